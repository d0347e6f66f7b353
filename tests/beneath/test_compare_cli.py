"""``artlens beneath compare`` end to end on a small synthetic pair, and bad input."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artlens.synth.hidden import builtin_pigments, make_hidden_scene

N = 128


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An 8-bit RGB PNG, its 16-bit IR as PNG and TIFF, a smaller IR, an RGB IR and the mask."""
    import tifffile
    from skimage.transform import resize

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = make_hidden_scene((N, N), kind="mixed", seed=5, pigments=builtin_pigments())
    d = tmp_path_factory.mktemp("pair")
    Image.fromarray(s.visible_rgb).save(d / "visible.png")
    Image.fromarray(s.ir).save(d / "ir.png")  # mode I;16
    tifffile.imwrite(d / "ir.tif", s.ir)
    small = resize(s.ir / 65535.0, (100, 100), anti_aliasing=True)
    Image.fromarray((small * 65535).round().astype(np.uint16)).save(d / "ir_small.png")
    ir8 = (s.ir // 257).astype(np.uint8)
    Image.fromarray(np.stack([ir8, ir8 // 2 + 10, ir8], axis=-1)).save(d / "ir_rgb.png")
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    np.save(d / "mask.npy", s.mask)
    return {p.stem: p for p in d.iterdir()}


def _json(out: str) -> dict:
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1, out
    return json.loads(lines[0])


def test_default_is_the_pixel_method_with_provenance_and_cross_check(cli, pair, tmp_path, _isolated_catalog) -> None:
    from sklearn.metrics import average_precision_score

    from artlens import __version__
    from artlens.catalog import Catalog

    code, out, err = cli("beneath", "compare", pair["visible"], pair["ir"], "--out", tmp_path / "o", "--json")
    assert code == 0, err
    s = _json(out)
    assert s["method"] == "pixel" and s["heatmap_name"] == "pixel" and s["model"] is None
    heat = np.load(s["heatmap"])
    assert heat.shape == (N, N) and heat.dtype == np.float32 and np.isfinite(heat).all()
    mask = np.load(pair["mask"])
    assert average_precision_score(mask.ravel(), heat.ravel()) > 5 * mask.mean()  # higher = hidden
    assert set(s["heatmaps"]) == {"pixel", "residual"}
    for files in s["heatmaps"].values():
        assert Path(files["npy"]).is_file() and Path(files["png"]).is_file()
    # provenance: method, parameters (the pixel method's own), version; no model, so no checksum
    prov = s["provenance"]
    assert prov["method"] == "beneath.pixel" and prov["artlens_version"] == __version__
    assert prov["parameters"]["pixel"]["grid"] == 12 and prov["model_checksum"] is None
    assert s["pixel"]["params"] == prov["parameters"]["pixel"] and "pixel:" in s["method_description"]
    # the automatic cross-check: pixel against residual, flagged cells listed and drawn, nothing averaged
    d = s["disagreement"]
    assert d["methods"] == ["pixel", "residual"] and d["cells_compared"] == (N // 32) ** 2
    assert d["n_flagged"] == len(d["cells"]) and Path(d["figure"]).is_file()
    html = Path(s["files"]["report_html"]).read_text()
    assert "Check here" in html and "Pixel method" in html and "per-pixel, multi-scale" in html
    on_disk = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert on_disk["provenance"] == prov and on_disk["disagreement"]["n_flagged"] == d["n_flagged"]
    with Catalog(_isolated_catalog) as cat:
        rows = cat.analyses(method="beneath.pixel")
    assert len(rows) == 1 and rows[0]["summary"]["heatmap"] == s["heatmap"]
    assert rows[0]["summary"]["disagreement"]["methods"] == ["pixel", "residual"]


def test_compare_gat_json_contract(cli, pair, tmp_path, _isolated_catalog) -> None:
    from sklearn.metrics import average_precision_score

    from artlens.catalog import Catalog

    code, out, err = cli("beneath", "compare", pair["visible"], pair["ir"], "--out", tmp_path / "o", "--json",
                         "--method", "gat")
    assert code == 0, err
    s = _json(out)
    assert s["method"] == "gat" and s["heatmap_name"] == "embedding_distance"
    heat = np.load(s["heatmap"])
    assert heat.shape == (N, N) and heat.dtype.kind == "f" and np.isfinite(heat).all()
    mask = np.load(pair["mask"])
    assert average_precision_score(mask.ravel(), heat.ravel()) > 3 * mask.mean()  # higher = hidden
    reg = s["registration"]
    assert {"method_used", "residual_px", "transform", "skipped"} <= set(reg)
    assert set(s["heatmaps"]) == {"embedding_distance", "attention", "pixel", "residual"}
    assert s["disagreement"]["methods"] == ["embedding_distance", "pixel"]
    for files in s["heatmaps"].values():
        assert Path(files["npy"]).is_file() and Path(files["png"]).is_file()
    html = Path(s["files"]["report_html"]).read_text()
    assert "Registration" in html and "embedding_distance" in html and "data:image/png;base64" in html
    assert "graph-attention" in html  # the Method section describes the method that ran
    assert s["model"]["sha256"] and s["provenance"]["model_checksum"] == s["model"]["sha256"]
    with Catalog(_isolated_catalog) as cat:
        rows = cat.analyses(method="beneath.gat")
    assert len(rows) == 1 and rows[0]["summary"]["heatmap"] == s["heatmap"]
    assert rows[0]["model_checksum"] == s["model"]["sha256"]


def test_model_is_refused_for_training_free_methods(cli, pair, tmp_path) -> None:
    code, _, err = cli("beneath", "compare", pair["visible"], pair["ir"], "--out", tmp_path / "m", "--model",
                       tmp_path, "--no-catalog")
    assert code == 7 and "--model applies to the gat and gcn methods" in err
    assert len(err.strip().splitlines()) == 1


def test_compare_residual_from_tiff_and_prose(cli, pair, tmp_path) -> None:
    code, out, err = cli("beneath", "compare", pair["visible"], pair["ir"].with_suffix(".tif"), "--out", tmp_path / "r",
                         "--method", "residual", "--no-report", "--no-catalog")
    assert code == 0, err
    assert "residual (this method's heatmap)" in out
    assert np.load(tmp_path / "r" / "residual.npy").shape == (N, N)
    assert not (tmp_path / "r" / "report.html").exists()


def test_different_sizes_are_registered(cli, pair, tmp_path) -> None:
    code, out, err = cli("beneath", "compare", pair["visible"], pair["ir_small"], "--out", tmp_path / "s",
                         "--method", "residual", "--json", "--no-catalog")
    if code != 0:  # a registration that fails must say so in one line
        assert code == 7 and err.startswith("error: registration failed") and len(err.strip().splitlines()) == 1
        return
    s = _json(out)
    assert s["registration"]["method_used"] in ("feature", "intensity")
    assert s["registration"]["scale"] == pytest.approx(N / 100, rel=0.05)
    assert np.load(s["heatmap"]).shape == (N, N)


def test_rgb_other_is_converted_with_a_notice(cli, pair, tmp_path) -> None:
    code, out, err = cli("beneath", "compare", pair["visible"], pair["ir_rgb"], "--out", tmp_path / "c",
                         "--method", "residual", "--json", "--no-catalog", "--no-report")
    assert code == 0, err
    assert "notice:" in err and "converted" in err
    assert any("luminance" in n for n in _json(out)["notes"])


@pytest.mark.parametrize(("args", "exit_code", "message"), [
    (("visible", "broken"), 4, "corrupt"),
    (("visible", "missing"), 3, "no such file"),
    (("ir", "ir"), 5, "not RGB"),
])
def test_bad_input_is_one_line_error(cli, pair, tmp_path, args, exit_code, message) -> None:
    paths = [pair.get(a, tmp_path / f"{a}.png") for a in args]
    code, out, err = cli("beneath", "compare", *paths, "--out", tmp_path / "e", "--method", "residual")
    assert code == exit_code
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]


def test_unknown_method_is_refused(cli, pair, tmp_path) -> None:
    code, _, err = cli("beneath", "compare", pair["visible"], pair["ir"], "--out", tmp_path / "m", "--method", "sage")
    assert code == 7 and "unknown method" in err
