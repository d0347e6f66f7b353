"""Cross-checking two thread counters: disagreements are flagged (summary, maps, report), never averaged."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import tifffile

from artlens.canvas.threads import count_threads_spectral
from artlens.canvas.threads.run import cross_check


def _weave(fh: float = 12.0, fv: float = 15.0) -> np.ndarray:
    y, x = np.mgrid[0:600, 0:600] / 200.0
    return (np.cos(2 * np.pi * fh * y) + np.cos(2 * np.pi * fv * x)).astype(np.float32)


def _dark_interstice_lattice(fh: float, fv: float, seed: int = 1) -> np.ndarray:
    """Threads bright at their centres plus a dark spot at every interstice, over noise: the spectral
    counter reads it right, the phase CNN trained on artlens' plates over-counts it (issue 18)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:800, 0:800] / 200.0
    img = 0.15 * (np.cos(2 * np.pi * fh * y) + np.cos(2 * np.pi * fv * x))
    py, px = (y * fh) % 1 - 0.5, (x * fv) % 1 - 0.5
    img -= 1.2 * np.exp(-(py**2 + px**2) / (2 * 0.12**2))
    img += 0.3 * rng.standard_normal(img.shape)
    return np.clip((img - img.min()) / (img.max() - img.min()) * 255, 0, 255).astype(np.uint8)


def test_cross_check_flags_windows_and_plate_beyond_tolerance():
    a = count_threads_spectral(_weave(), px_per_cm=200.0)
    b = count_threads_spectral(_weave(), px_per_cm=200.0)
    b = replace(b, method="cnn", horizontal=replace(b.horizontal, density=b.horizontal.density.copy()))
    b.horizontal.density[0, :] += 2.0  # one row of windows off by 2 threads/cm
    c = cross_check(a, b)
    ny, nx = a.horizontal.density.shape
    assert c["horizontal"]["windows_flagged"] == nx
    assert c["horizontal"]["windows_compared"] == ny * nx
    assert c["horizontal"]["plate_flagged"]  # 5 of 25 windows > 10 %
    assert not c["vertical"]["plate_flagged"] and c["vertical"]["windows_flagged"] == 0
    assert c["plate_flagged"] and "check here" in c["message"] and "horizontal" in c["message"]
    # both results keep their own numbers and carry the same check mask for the maps
    assert np.array_equal(a.horizontal.check, b.horizontal.check) and a.horizontal.check[0].all()
    assert b.horizontal.stats()["threads_per_cm"]["mean"] != a.horizontal.stats()["threads_per_cm"]["mean"]


def test_disputed_plate_interval_covers_both_methods():
    """Where the methods disagree on a plate, each 90 % interval reaches over the other's (nothing says which
    is right), the summary says why; an undisputed direction keeps its own interval."""
    a = count_threads_spectral(_weave(), px_per_cm=200.0)
    b = count_threads_spectral(_weave(), px_per_cm=200.0)
    b = replace(b, method="cnn", horizontal=replace(b.horizontal, density=b.horizontal.density + 2.0))
    own_a, own_b = a.plate_interval("horizontal"), b.plate_interval("horizontal")
    own_v = b.plate_interval("vertical")
    assert own_b[0] > own_a[1]  # disjoint before the check
    cross_check(a, b)
    for r in (a, b):
        lo, hi = r.plate_interval("horizontal")
        assert lo == min(own_a[0], own_b[0]) and hi == max(own_a[1], own_b[1])
    assert b.plate_interval("vertical") == own_v
    s = b.summary()
    assert "spectral" in s["horizontal"]["interval_90_note"] and "interval_90_note" not in s["vertical"]
    assert b.plate_interval("horizontal", level=0.5)[0] > own_a[1]  # only the reported 90 % interval widens
    cross_check(a, replace(b, horizontal=replace(b.horizontal, density=a.horizontal.density.copy())))
    assert a.plate_interval("horizontal") == own_a  # a later check that agrees clears the dispute


def test_cross_check_quiet_when_methods_agree():
    a = count_threads_spectral(_weave(), px_per_cm=200.0)
    b = replace(count_threads_spectral(_weave(), px_per_cm=200.0), method="cnn")
    c = cross_check(a, b)
    assert not c["plate_flagged"] and c["message"] is None


@pytest.mark.slow
def test_cnn_count_on_interstice_lattice_is_flagged_against_spectral(tmp_path, cli):
    path = tmp_path / "lattice.tif"
    tifffile.imwrite(path, _dark_interstice_lattice(8.2, 9.0), resolution=(200.0, 200.0),
                     resolutionunit="CENTIMETER")
    code, out, err = cli("threads", "count", str(path), "--out", str(tmp_path / "o"), "--method", "cnn",
                         "--no-catalog")
    assert code == 0, err
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    cc = s["cross_check"]
    assert cc["horizontal"]["spectral_threads_per_cm"] == pytest.approx(8.2, abs=0.1)
    assert cc["vertical"]["spectral_threads_per_cm"] == pytest.approx(9.0, abs=0.1)
    if cc["plate_flagged"]:  # the CNN over-counts: the plate and its windows are flagged, in prose too
        assert "check here" in out
        assert "check here" in (tmp_path / "o" / "report.html").read_text()
        assert "h_check" in (tmp_path / "o" / "windows.csv").read_text().splitlines()[0]
    else:  # a CNN that reads it right agrees with spectral within the tolerance
        for d, truth in (("horizontal", 8.2), ("vertical", 9.0)):
            assert s[d]["threads_per_cm"]["mean"] == pytest.approx(truth, abs=0.25)
    # the report describes the method that ran (the phase CNN), not only the Fourier analysis
    html = (tmp_path / "o" / "report.html").read_text()
    assert "Phase CNN." in html and "Spectral counter." not in html and "interval_90" in json.dumps(s)
