"""The base install works without the extras: spectral thread counting never needs torch, and a command
that needs a missing extra says which one to install (no traceback).

The extras' modules are hidden from a child process by an import hook (a ``sitecustomize`` on its
``PYTHONPATH``), which is what a ``pip install artlens`` without extras looks like to artlens.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from artlens.extras import EXTRAS, extra_for, missing_extra

BLOCKER = """
import sys
BLOCKED = {blocked!r}
class _Hide:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, _Hide())
"""


def _run(tmp_path: Path, *args: str, hide: set[str]) -> subprocess.CompletedProcess[str]:
    hook = tmp_path / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(BLOCKER.format(blocked=sorted(hide)))
    env = {**os.environ, "PYTHONPATH": str(hook)}
    code = "import sys; from artlens.cli.main import main; sys.argv[0] = 'artlens'; main(sys.argv[1:])"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)


ALL_EXTRAS = {m for _, modules in EXTRAS.values() for m in modules}


def test_spectral_thread_count_needs_no_extra(tmp_path):
    made = _run(tmp_path, "synth", "plate", "plate.tif", "--seed", "3", hide=ALL_EXTRAS)
    assert made.returncode == 0, made.stderr
    done = _run(tmp_path, "threads", "count", "plate.tif", "--out", "out", "--json", "--no-catalog",
                hide=ALL_EXTRAS)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["method"] == "spectral"
    assert abs(summary["horizontal"]["threads_per_cm"]["mean"] - 12.0) < 0.3
    assert (tmp_path / "out" / "report.html").is_file()
    # the phase CNN's second opinion needs torch: skipped, and the summary says what to install
    assert "pip install 'artlens[dl]'" in summary["second_opinion"]["skipped"]
    assert summary["second_opinion"]["plate_flagged"] is False


@pytest.mark.parametrize(("args", "extra"), [
    (["paintings", "verify", "a.jpg", "b.jpg"], "dl"),
    (["serve", "--port", "65017"], "web"),  # fails at import, before it could listen
])
def test_a_command_without_its_extra_says_what_to_install(tmp_path, args, extra):
    done = _run(tmp_path, *args, hide=ALL_EXTRAS)
    assert done.returncode == 10, done.stderr
    assert f"pip install 'artlens[{extra}]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_every_extra_module_maps_back_to_its_extra():
    for extra, (_, modules) in EXTRAS.items():
        for module in modules:
            assert extra_for(f"{module}.sub") == extra
    assert missing_extra(ModuleNotFoundError("No module named 'numpyx'", name="numpyx")) is None
