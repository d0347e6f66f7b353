"""``kill -9`` of a batch command at a known point: the real ``artlens`` entry point in a child process that
stops itself (SIGSTOP) right after its N-th result is written to disk; the test then sends SIGKILL.

The stop point makes the test deterministic (exactly N results landed, whatever the machine's load) and
the kill is a real one: no ``finally``, no ``atexit``, no flush of anything not yet on disk. Only the stop
is added to the child: the command's own code runs unchanged.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

_CHILD = """
import importlib, os, signal, sys
module, attr, marker, after = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
owner = importlib.import_module(module)
*outer, name = attr.split(".")
for part in outer:
    owner = getattr(owner, part)
original = getattr(owner, name)
calls = 0
def named(a):
    p = getattr(a, "path", a)
    return isinstance(p, (str, os.PathLike)) and marker in str(p)
def stopping(*args, **kwargs):
    global calls
    result = original(*args, **kwargs)
    if any(named(a) for a in args):
        calls += 1
        if calls == after:
            os.kill(os.getpid(), signal.SIGSTOP)
    return result
setattr(owner, name, stopping)
from artlens.cli.main import main
main(sys.argv[5:])
"""


def kill_after(
    args: Sequence[object],
    *,
    writer: str,
    marker: str,
    after: int,
    catalog: Path | None,
    log: Path,
    timeout_s: float = 120.0,
) -> None:
    """Run ``artlens ARGS`` in a child process and SIGKILL it right after its ``after``-th write.

    Args:
        args: the command line after ``artlens``.
        writer: ``"module:attribute"`` of the function that writes one result (e.g.
            ``"artlens.engine:ResultLedger.append"``); a call counts when one of its path arguments (or an
            argument's ``path`` attribute) contains ``marker`` (e.g. ``"/predictions.csv"``).
        after: the call after which the child stops and is killed.
        catalog: the child's ``ARTLENS_CATALOG``.
        log: where the child's stdout and stderr go (shown when it ends before its stop point).
    """
    module, attr = writer.split(":")
    env = dict(os.environ)
    if catalog is not None:
        env["ARTLENS_CATALOG"] = str(catalog)
    cmd = [sys.executable, "-c", _CHILD, module, attr, marker, str(after), *map(str, args)]
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            pid, status = os.waitpid(proc.pid, os.WNOHANG | os.WUNTRACED)
            if pid and os.WIFSTOPPED(status):
                break
            if pid:  # it ended without reaching its stop point
                proc.returncode = os.waitstatus_to_exitcode(status)
                raise AssertionError(
                    f"the run ended (exit {proc.returncode}) before its result {after}:\n" + log.read_text()
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"no result {after} within {timeout_s:.0f} s:\n" + log.read_text())
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        _, status = os.waitpid(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        assert proc.returncode == -signal.SIGKILL, proc.returncode
    finally:
        if proc.returncode is None:
            proc.kill()
            proc.wait(10)
