"""``--device auto|cpu|cuda[:N]``: one resolver for every inference command; CUDA refused in one line
where there is no GPU."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from artlens.devices import batch_size_for, check_device_spec, place_extractor, resolve_device
from artlens.errors import InvalidParameterError

torch = pytest.importorskip("torch")
NO_GPU = not torch.cuda.is_available()


def test_resolve_device():
    assert resolve_device("cpu") == "cpu" and resolve_device(" CPU ") == "cpu"
    assert resolve_device("auto") == ("cpu" if NO_GPU else "cuda:0")
    for bad in ("gpu", "cuda:", "cuda:x", "tpu"):
        with pytest.raises(InvalidParameterError, match="device must be auto, cpu, cuda or cuda:N") as err:
            check_device_spec(bad)
        assert err.value.param == "device"  # the CLI shows it as --device
    assert batch_size_for("cpu", 4, 16) == 4 and batch_size_for("cuda:0", 4, 16) == 16


def test_place_extractor_leaves_the_cpu_alone():
    class Ex:
        model, device, batch_size = object(), "cpu", 16

    class Owner:
        extractor = Ex()

    assert place_extractor(Owner(), "cpu") is False and Owner.extractor.batch_size == 16
    assert place_extractor(object(), "cuda:0") is False  # nothing to move


@pytest.mark.skipif(not NO_GPU, reason="this machine has a GPU")
def test_cuda_refused_by_the_inference_commands(cli, tmp_path):
    for k in range(2):
        pixels = (np.random.default_rng(k).random((48, 48, 3)) * 255).astype("uint8")
        Image.fromarray(pixels).save(tmp_path / f"i{k}.png")
    a, b = tmp_path / "i0.png", tmp_path / "i1.png"
    commands = [
        ("verify", a, b, "--no-catalog", "--device", "cuda"),
        ("index", tmp_path, "--index", tmp_path / "idx", "--no-catalog", "--device", "cuda:0"),
        ("canvas", "compare", a, b, "--device", "cuda"),
        ("canvas", "match", tmp_path, "--out", tmp_path / "m", "--no-catalog", "--device", "cuda"),
    ]
    for args in commands:
        code, _, err = cli(*args)
        assert code == 7, (args, err)
        assert "no CUDA GPU is available on this machine" in err and "Traceback" not in err, args
    assert not (tmp_path / "idx").exists() and not (tmp_path / "m").exists()  # refused before any work
