"""A second opinion on the spectral counter's plate densities: the phase CNN on a sample of the plate.

The spectral counter is the default of ``artlens threads count`` because it is the most accurate out of
family (BENCHMARKS.md). It can still misread a whole plate with a tight interval and no doubt of its
own: on development draws of the independent simulator (``benchmarks/familyb``, seeds 610 000 and
640 000, 192 plates, never the measuring draw) it read 6 plates more than 10 % off, 3 of them with no
``harmonic_alternative`` to say so: a lining canvas read instead of the painting's canvas, a direction
read at half or two thirds of its density under heavy paint. The phase CNN is a different kind of
reader (it follows each thread's phase instead of a spectral peak), and it disagreed by more than
:data:`RELATIVE_TOLERANCE` on all 6 and on 2 of the 186 plates read right.

The rule, per thread direction:

1. the phase CNN counts the central :data:`SAMPLE_CM` × :data:`SAMPLE_CM` cm of the plate (the whole
   plate when it is smaller) on the spectral counter's windows;
2. its median over those windows is compared with the spectral median over the same windows;
3. they disagree when they differ by more than :data:`RELATIVE_TOLERANCE` of the spectral reading;
4. the CNN over-counts coarse weaves at its own resolution (its model card): where spectral reads
   below :data:`COARSE_BELOW` threads/cm and the two disagree, the CNN reads the sample again at half
   its resolution, and that reading is the opinion when it is closer. This makes the check blind to
   a spectral error on a coarse reading that the half-resolution CNN shares.

Nothing is averaged: a disagreement flags the plate (``summary.json`` ``second_opinion``, the report and
the command's output) and widens the spectral 90 % plate interval to cover the CNN's.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from artlens.canvas.threads.cnn import CNNCounter, CnnParams
from artlens.canvas.threads.grid import WindowGrid
from artlens.canvas.threads.preprocess import PlateSource
from artlens.canvas.threads.result import DIRECTIONS, ThreadCountResult
from artlens.errors import InvalidParameterError

METHOD = "phase CNN on the central sample (artlens.canvas.threads.opinion)"
"""What a :func:`second_opinion` record says ran."""
SAMPLE_CM = 4.0
"""Side of the central square the CNN reads, cm."""
RELATIVE_TOLERANCE = 0.25
"""The two readings disagree when they differ by more than this fraction of the spectral one. Wide on
purpose: it is meant for a plate read wrong as a whole (a lining, a half, two thirds or a double), not
for the CNN's own out-of-family errors, which reach 20 % (on the development draws above, 0.15 flagged
the same 6 misread plates and 9 plates read within 0.4 threads/cm; 0.25 flagged 1 of those)."""
COARSE_BELOW = 10.5
"""threads/cm: below this spectral reading a disagreeing CNN reads the sample again at half its
resolution (its long-period end is sparse in training; model card)."""


@functools.lru_cache(maxsize=2)
def _shipped(device: str) -> CNNCounter:
    """The shipped phase CNN on ``device``, loaded once per process (a batch checks many plates)."""
    return CNNCounter.load(None, device=device)


def _sample(src: PlateSource, side_cm: float) -> tuple[PlateSource, tuple[int, int]]:
    """The central square of ``src`` (at most ``side_cm`` wide), and its top-left corner, px."""
    h, w = src.shape
    n = int(round(side_cm * src.px_per_cm))
    sh, sw = min(h, n), min(w, n)
    top, left = (h - sh) // 2, (w - sw) // 2

    def rows(a: int, b: int) -> np.ndarray:
        return src.rows(top + a, top + b)[:, left: left + sw]

    return PlateSource(rows, (sh, sw), src.px_per_cm), (top, left)


def _inside(spectral: ThreadCountResult, d: str, box_cm: tuple[float, float, float, float]) -> float | None:
    """Median of the spectral counter's valid windows whose centre lies in ``box_cm`` (y0, x0, y1, x1)."""
    m = spectral.direction(d)
    y0, x0, y1, x1 = box_cm
    inside = ((spectral.y_cm >= y0) & (spectral.y_cm <= y1))[:, None] & ((spectral.x_cm >= x0)
                                                                        & (spectral.x_cm <= x1))[None, :]
    ok = inside & np.isfinite(m.density) & ~m.outlier
    return float(np.median(m.density[ok])) if ok.any() else None


def second_opinion(src: PlateSource, spectral: ThreadCountResult, cnn: CnnParams | None = None) -> dict[str, Any]:
    """Check the spectral counter's plate densities with the phase CNN on a central sample (module doc).

    Marks ``disputed`` on ``spectral``'s directions that disagree (their 90 % interval then covers the
    CNN's).

    Returns:
        ``{"method", "model", "model_sha256", "sample_cm": [y0, x0, y1, x1], "relative_tolerance",
        "horizontal": {...}, "vertical": {...}, "plate_flagged", "message"}``; per direction the two
        medians over the sample (threads/cm), the half-resolution re-read where one was made, and
        ``flagged``. Without torch (the base install), ``{"method", "skipped", "plate_flagged": False,
        "message": None}``: ``skipped`` says what to install.
    """
    from artlens.canvas.threads.phase import count_threads_phase
    from artlens.extras import missing_extra

    p = cnn or CnnParams()
    try:
        counter = _shipped(p.device) if p.model is None else p.load()
    except ModuleNotFoundError as exc:  # the base install has no torch: say so, count on
        if (why := missing_extra(exc)) is None:
            raise
        return {"method": METHOD, "skipped": f"no second opinion: {why}", "plate_flagged": False, "message": None}
    if counter.task != "thread_phase":
        raise InvalidParameterError(f"the second opinion needs a phase network, not {counter.config['model']}",
                                    param="model")
    sample, (top, left) = _sample(src, SAMPLE_CM)
    ppc = src.px_per_cm
    grid = WindowGrid.over(sample.shape, ppc, spectral.window_cm, spectral.step_cm)
    batch = p.batch_for(counter)
    native = count_threads_phase(sample, counter, grid, batch_size=batch)
    box = (top / ppc, left / ppc, (top + sample.shape[0]) / ppc, (left + sample.shape[1]) / ppc)
    half: ThreadCountResult | None = None
    out: dict[str, Any] = {
        "method": METHOD, "model": counter.config.get("model"), "model_sha256": counter.config.get("sha256"),
        "sample_cm": [round(v, 4) for v in box], "relative_tolerance": RELATIVE_TOLERANCE,
        "coarse_below_threads_per_cm": COARSE_BELOW,
    }
    messages = []
    for d in DIRECTIONS:
        spectral.direction(d).disputed = None
        s = _inside(spectral, d, box)
        c = native.direction(d).stats()["threads_per_cm"]["median"]
        rec: dict[str, Any] = {"spectral_threads_per_cm": None if s is None else round(s, 4),
                               "cnn_threads_per_cm": c, "cnn_half_resolution_threads_per_cm": None,
                               "flagged": False}
        if s is None or c is None:
            rec["note"] = "one of the two found no threads in the sample: not compared"
            out[d] = rec
            continue
        used, interval = float(c), native.plate_interval(d)
        if abs(used - s) > RELATIVE_TOLERANCE * s and s < COARSE_BELOW:
            if half is None:
                half = count_threads_phase(sample, counter, grid, batch_size=batch,
                                           input_px_per_cm=counter.px_per_cm / 2)
            ch = half.direction(d).stats()["threads_per_cm"]["median"]
            rec["cnn_half_resolution_threads_per_cm"] = ch
            if ch is not None and abs(ch - s) < abs(used - s):
                used, interval = float(ch), half.plate_interval(d)
        rec["flagged"] = bool(abs(used - s) > RELATIVE_TOLERANCE * s)
        if rec["flagged"]:
            spectral.direction(d).disputed = {"method": "cnn (second opinion)", "interval_90": interval}
            messages.append(f"{d} threads: spectral {s:.2f}, phase CNN {used:.2f} threads/cm")
        out[d] = rec
    out["plate_flagged"] = bool(messages)
    out["message"] = ("check here: a second reader disagrees with the count on the central "
                      f"{sample_text(out)} — " + "; ".join(messages)
                      + ". A lining canvas, a patch or a half / double density can mislead one reader; count a "
                        "few threads on the plate to decide. Neither is averaged.") if messages else None
    return out


def sample_text(opinion: dict[str, Any]) -> str:
    """The sample a :func:`second_opinion` record checked, for people: ``"4.0 × 4.0 cm"`` (width × height)."""
    y0, x0, y1, x1 = opinion["sample_cm"]
    return f"{x1 - x0:.1f} × {y1 - y0:.1f} cm"
