"""Counting threads from a weave-phase network: the estimator (with an exact phase "oracle" in place
of the network), the mask -> phase labels, the phase training data and the loss."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from artlens.canvas.threads.cnn import CNNCounter, CnnParams, count_threads_cnn
from artlens.canvas.threads.labels import mask_phase
from artlens.errors import InvalidImageError, InvalidParameterError
from artlens.models.losses import phase_mse
from artlens.synth import make_plate
from artlens.train.threads import PhaseCropDataset, TrainConfig, synthetic_phase_samples


class HilbertPhase(nn.Module):
    """Exact phase of gratings that vary along y: the analytic signal of each column (FFT; negative
    frequencies and those below 4 cycles/cm at 200 px/cm removed), pooled 2 x 2 like the phase
    network's output."""

    task = "thread_phase"

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, 0].double()
        x = x - x.mean(dim=1, keepdim=True)  # removes anything constant along a column
        spec = torch.fft.fft(x, dim=1)
        n = x.shape[1]
        gain = torch.zeros(n, dtype=torch.float64)
        gain[int(np.ceil(4 * n / 200)): (n + 1) // 2] = 2.0
        z = torch.fft.ifft(spec * gain[None, :, None], dim=1)
        z = z / z.abs().clamp_min(1e-9)
        z = nn.functional.avg_pool2d(torch.stack([z.real, z.imag], 1), 2)
        return z.float()


def oracle() -> CNNCounter:
    config = {"model": "hilbert_oracle", "kwargs": {}, "task": "thread_phase", "input_px_per_cm": 200.0,
              "crop_cm": 0.64, "sha256": "0" * 64}
    return CNNCounter(HilbertPhase(), config, Path("oracle"))


def gratings(h: int, w: int, ppc: float, fh: float, fv: float, ah: float = 0.0, av: float = 0.0) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w] / ppc
    th, tv = np.radians(ah), np.radians(av)
    # horizontal threads: phase fh * (y cos th + x sin th) -> gradient angle th from the y axis
    return (2 + np.cos(2 * np.pi * fh * (y * np.cos(th) + x * np.sin(th)))
            + np.cos(2 * np.pi * fv * (x * np.cos(tv) - y * np.sin(tv)))).astype(np.float32)


@pytest.mark.parametrize("ppc", [200.0, 150.0, 260.0])
def test_phase_estimator_recovers_density_and_angle_over_many_tiles(ppc):
    # 7 x 6.5 cm at 200 px/cm: several bands and tiles, so tile seams and band joins are inside windows
    img = gratings(int(7 * ppc), int(6.5 * ppc), ppc, 13.7, 21.3, ah=2.0, av=-1.5)
    r = count_threads_cnn(img, CnnParams(model=oracle(), step_cm=0.5, window_cm=1.0), px_per_cm=ppc)
    assert r.horizontal.density.shape == (13, 12) and r.method == "cnn"
    assert np.nanmax(np.abs(r.horizontal.density - 13.7)) < 0.1
    assert np.nanmax(np.abs(r.vertical.density - 21.3)) < 0.1
    assert abs(np.nanmedian(r.horizontal.angle) - 2.0) < 0.2
    assert abs(np.nanmedian(r.vertical.angle) + 1.5) < 0.2
    assert r.parameters["window_cm"] == 1.0 and r.model_checksum == "0" * 64


def test_phase_counter_takes_any_window_and_rejects_tiny_plates():
    img = gratings(400, 400, 200.0, 12.0, 16.0)
    r = count_threads_cnn(img, CnnParams(model=oracle(), step_cm=0.25, window_cm=1.5), px_per_cm=200.0)
    assert r.horizontal.density.shape == (3, 3)
    assert abs(np.nanmean(r.horizontal.density) - 12.0) < 0.1
    with pytest.raises(InvalidImageError, match="smaller than"):
        count_threads_cnn(img, CnnParams(model=oracle(), window_cm=2.5), px_per_cm=200.0)
    with pytest.raises(InvalidParameterError, match="positive"):
        count_threads_cnn(img, CnnParams(model=oracle(), step_cm=0.0), px_per_cm=200.0)
    with pytest.raises(InvalidParameterError, match="phase network"):
        oracle().predict(np.zeros((1, 128, 128), np.float32))


def test_mask_phase_follows_the_threads_of_a_synthetic_plate():
    plate = make_plate(height_cm=1.5, width_cm=1.5, horizontal_density=14.0, vertical_density=19.0,
                       spacing_jitter=0.05, seed=3)
    for d in ("horizontal", "vertical"):
        true = plate.thread_phase[d].astype(np.float64)
        frac = true - np.round(true)
        mask = np.abs(frac) < 0.2  # the middle 40 % of every thread
        est = mask_phase(mask, d)
        ok = np.isfinite(est)
        assert ok.mean() > 0.8
        offset = np.round(np.median((true - est)[ok]))
        err = (true - est - offset)[ok]
        err = (err + 0.5) % 1.0 - 0.5  # per line the numbering may start at another thread
        assert np.median(np.abs(err)) < 0.05


def test_mask_phase_leaves_out_lines_with_merged_threads():
    m = np.zeros((80, 3), bool)
    for y in range(5, 80, 10):
        m[y: y + 4] = True
    m[25:40, 1] = True  # column 1: two threads merged into one run
    p = mask_phase(m, "horizontal")
    assert np.isfinite(p[:, 0]).sum() > 60 and np.isnan(p[:, 1]).all()
    assert p[17, 0] - p[7, 0] == pytest.approx(1.0)


def test_phase_mse_by_hand():
    pred = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]])  # (1, 2, 1, 2)
    target = torch.tensor([[[[1.0, 1.0]], [[0.0, 0.0]], [[1.0, 1.0]]]])  # second pixel: (0, 1) vs (1, 0)
    assert float(phase_mse(pred, target)) == pytest.approx((0 + 0 + 1 + 1) / 4)
    target[0, 2, 0, 1] = 0.0  # unknown phase there: only the first pixel counts
    assert float(phase_mse(pred, target)) == pytest.approx(0.0)


def test_phase_training_targets_follow_flips_and_rotations():
    cfg = TrainConfig(model="weavephase_test", input_px_per_cm=200.0, crop_cm=0.64)
    xs, phs, groups = synthetic_phase_samples(2, cfg, seed=5)
    assert xs[0].dtype == np.uint8 and phs[0].shape == (2, 150, 150) and list(groups) == [0, 1]
    ds = PhaseCropDataset(xs, phs, cfg.size, items_per_sample=16, augment=True, seed=1)
    for i in range(len(ds)):
        x, t = ds[i]
        assert x.shape == (1, 128, 128) and t.shape == (3, 64, 64)
        z = (t[0] + 1j * t[1]).numpy()
        step_down = np.angle(z[1:] * np.conj(z[:-1])).mean()
        assert step_down > 0.05  # the phase always increases downwards, whatever the augmentation
