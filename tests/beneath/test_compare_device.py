"""``artlens beneath compare --device auto|cpu|cuda[:N]``: the graph models run on the device named (the graphs
are moved to the model's device, the maps come back to numpy), CUDA is refused in one line without a GPU, and
nothing is written then. There is no GPU here: the CUDA path itself is not exercised."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artlens.synth.hidden import builtin_pigments, make_hidden_scene

pytest.importorskip("torch")
pytest.importorskip("torch_geometric")

N = 96


@pytest.fixture(scope="module")
def views(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("views")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = make_hidden_scene((N, N), kind="mixed", seed=5, pigments=builtin_pigments())
    Image.fromarray(s.visible_rgb).save(d / "vis.png")
    Image.fromarray(s.ir).save(d / "ir.png")
    (d / "pairs.csv").write_text("visible,other\nvis.png,ir.png\n")
    return d / "vis.png", d / "ir.png"


def test_gat_on_the_cpu_device_gives_the_library_default(cli, views, tmp_path):
    from artlens.beneath.compare import compare_views

    vis, ir = views
    s = compare_views(vis, ir, tmp_path / "lib", method="gat", use_catalog=False, report=False)
    code, _, err = cli("beneath", "compare", vis, ir, "--out", tmp_path / "cli", "--method", "gat", "--device", "cpu",
                       "--no-catalog", "--no-report")
    assert code == 0, err
    want, got = np.load(s["heatmap"]), np.load(tmp_path / "cli" / Path(s["heatmap"]).name)
    assert np.array_equal(want, got)
    code, _, err = cli("beneath", "compare", "--pairs", vis.parent / "pairs.csv", "--out", tmp_path / "batch",
                       "--method", "gat", "--device", "auto", "--no-catalog", "--no-report")
    assert code == 0, err
    assert np.array_equal(want, np.load(tmp_path / "batch" / "vis--ir" / Path(s["heatmap"]).name))


@pytest.mark.parametrize("method", ["gat", "pixel"])
def test_cuda_is_refused_in_one_line_without_a_gpu(cli, views, tmp_path, method):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    vis, ir = views
    for args in ((vis, ir), ("--pairs", vis.parent / "pairs.csv")):
        code, _, err = cli("beneath", "compare", *args, "--out", tmp_path / "o", "--method", method,
                           "--device", "cuda")
        assert code == 7 and "no CUDA GPU is available" in err and "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 1
    code, _, err = cli("beneath", "compare", vis, ir, "--out", tmp_path / "o", "--device", "tpu")
    assert code == 7 and "device must be auto, cpu, cuda or cuda:N" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()
