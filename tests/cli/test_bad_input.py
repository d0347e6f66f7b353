"""``artlens threads count`` on bad inputs: one ``error:`` line, the documented exit code, no
traceback, and the input file left exactly as it was.

Each case runs the CLI in a subprocess (about a second each).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

SRC = Path(__file__).resolve().parents[2] / "src"
RNG = np.random.default_rng(7)


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), *filter(None, [env.get("PYTHONPATH")])])
    env["ARTLENS_CATALOG"] = str(cwd / "catalog.db")  # never touch a real catalog
    env.pop("PYTHONWARNINGS", None)
    return subprocess.run(
        [sys.executable, "-m", "artlens.cli.main", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )


def _fingerprint(path: Path) -> tuple | None:
    """Size, mtime and a hash of the bytes (head and tail only for multi-GB sparse files)."""
    if not path.is_file():
        return None
    st = path.stat()
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        if st.st_size <= 64 * 2**20:
            h.update(fh.read())
        else:
            h.update(fh.read(2**20))
            fh.seek(-(2**20), os.SEEK_END)
            h.update(fh.read())
    return st.st_size, st.st_mtime_ns, h.hexdigest()


# -- input makers: each writes one file into a folder and returns its path --------------------------
def _good_tiff(d: Path, shape: tuple[int, int] = (300, 300)) -> Path:
    path = d / "plate.tif"
    tifffile.imwrite(path, RNG.integers(0, 256, size=shape, dtype=np.uint8),
                     resolution=(200, 200), resolutionunit="CENTIMETER")
    return path


def _missing(d: Path) -> Path:
    return d / "does_not_exist.tif"


def _empty(d: Path) -> Path:
    path = d / "empty.tif"
    path.touch()
    return path


def _corrupt_tiff(d: Path) -> Path:
    path = d / "corrupt.tif"
    path.write_bytes(RNG.integers(0, 256, size=8192, dtype=np.uint8).tobytes())
    return path


def _corrupt_tiff_header(d: Path) -> Path:
    path = d / "garbage_after_magic.tif"
    path.write_bytes(b"II*\x00\xff\xff\xff\x7f" + RNG.bytes(4000))
    return path


def _truncated_tiff(d: Path) -> Path:
    path = _good_tiff(d)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _truncated_png(d: Path) -> Path:
    path = d / "cut.png"
    Image.fromarray(RNG.integers(0, 256, size=(300, 300), dtype=np.uint8)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _text_as_png(d: Path) -> Path:
    path = d / "notes.png"
    path.write_text("not an image\n" * 10)
    return path


def _gif(d: Path) -> Path:
    path = d / "plate.gif"
    Image.fromarray(RNG.integers(0, 256, size=(64, 64), dtype=np.uint8)).save(path, format="GIF")
    return path


def _txt(d: Path) -> Path:
    path = d / "plate.txt"
    path.write_text("12 threads/cm\n")
    return path


def _no_resolution(d: Path) -> Path:
    path = d / "no_res.tif"
    tifffile.imwrite(path, RNG.integers(0, 256, size=(300, 300), dtype=np.uint8))  # unit NONE
    return path


def _no_resolution_png(d: Path) -> Path:
    path = d / "no_res.png"
    Image.fromarray(RNG.integers(0, 256, size=(300, 300), dtype=np.uint8)).save(path)
    return path


def _float_with(value: float) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        arr = RNG.random((300, 300), dtype=np.float32)
        arr[150, 77] = value
        path = d / "float.tif"
        tifffile.imwrite(path, arr, resolution=(200, 200), resolutionunit="CENTIMETER")
        return path
    return make


def _huge(d: Path) -> Path:
    path = d / "huge.tif"
    tifffile.imwrite(path, shape=(50_000, 50_000), dtype="uint8", bigtiff=True,
                     resolution=(200, 200), resolutionunit="CENTIMETER")
    if path.stat().st_blocks * 512 > 16 * 2**20:
        path.unlink()
        pytest.skip("filesystem does not support sparse files; a 2.5 GB test input is too big")
    return path


def _too_small(d: Path) -> Path:
    return _good_tiff(d, (100, 100))  # 0.5 cm at 200 px/cm, smaller than the 1 cm window


def _directory(d: Path) -> Path:
    path = d / "folder.tif"
    path.mkdir()
    return path


CASES = [
    # id, maker, extra CLI args, exit code, text the error line must contain
    ("missing", _missing, [], 3, "does_not_exist.tif"),
    ("empty", _empty, [], 4, "empty"),
    ("empty-folder", _directory, [], 3, "no plates"),  # a folder is a batch of plates (issue 20)
    ("corrupt-tiff", _corrupt_tiff, [], 4, "corrupt.tif"),
    ("corrupt-tiff-header", _corrupt_tiff_header, [], 4, "garbage_after_magic.tif"),
    ("truncated-tiff", _truncated_tiff, [], 4, "truncated"),
    ("truncated-png", _truncated_png, ["--px-per-cm", "200"], 4, "cut.png"),
    ("text-named-png", _text_as_png, [], 4, "notes.png"),
    ("unsupported-gif", _gif, [], 4, "unsupported"),
    ("unsupported-txt", _txt, [], 4, "unsupported"),
    ("no-resolution", _no_resolution, [], 6, "--px-per-cm"),
    ("no-resolution-png", _no_resolution_png, [], 6, "--px-per-cm"),
    ("nan-float", _float_with(np.nan), [], 5, "NaN"),
    ("inf-float", _float_with(np.inf), [], 5, "infinite"),
    ("huge", _huge, [], 5, "--allow-huge"),
    ("too-small", _too_small, [], 5, "--window-cm"),
    ("bad-band", _good_tiff, ["--band", "30", "10"], 7, "--band"),
    ("bad-page", _good_tiff, ["--page", "3"], 7, "--page"),
    ("bad-px-per-cm", _good_tiff, ["--px-per-cm", "-1"], 7, "--px-per-cm"),
]


@pytest.mark.parametrize("maker,extra,code,needle", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input(tmp_path: Path, maker: Callable[[Path], Path], extra: list[str], code: int,
                   needle: str) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    plate = maker(inputs)
    before = _fingerprint(plate)
    out = tmp_path / "out"

    proc = _run(["threads", "count", str(plate), "--out", str(out), "--no-catalog", *extra], tmp_path)

    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert all(ln.startswith(("error:", "notice:")) for ln in lines), proc.stderr
    assert needle in errors[0], errors[0]
    assert _fingerprint(plate) == before  # the input is never written to
    assert not (out / "summary.json").exists()


def test_colour_input_is_converted_with_notice(tmp_path: Path) -> None:
    """RGB where grayscale is expected: a ``notice:`` line, then the count runs on luminance."""
    path = tmp_path / "colour.png"
    Image.fromarray(RNG.integers(0, 256, size=(300, 300, 3), dtype=np.uint8)).save(path)
    before = _fingerprint(path)
    out = tmp_path / "out"

    proc = _run(["threads", "count", str(path), "--out", str(out), "--no-catalog", "--px-per-cm", "200"],
                tmp_path)

    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    notices = [ln for ln in proc.stderr.splitlines() if ln.startswith("notice:")]
    assert len(notices) == 1 and "grayscale" in notices[0], proc.stderr
    assert not any(ln.startswith("error:") for ln in proc.stderr.splitlines())
    assert (out / "summary.json").is_file()
    assert _fingerprint(path) == before
