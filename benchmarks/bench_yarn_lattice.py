"""How often the yarn descriptor finds each thread family's fundamental, on artlens' wide rolls and on the
independent family C (``benchmarks/familyc``); and how often the spectral thread counter's plate reading
does. A family whose density is read at a harmonic (or a half) gets every thread statistic wrong, so this
is where same-roll comparison out of family starts to fail.

Per cut and thread family: the descriptor's density (``yarn_descriptor``), the spectral counter's plate
reading (the median of the windows of ``count_threads_spectral`` that are not flagged as outliers), and
a rule tried and not kept (2026-12-07; BENCHMARKS.md): where those two differ by more than 8 %, the
lower when its whitened peak reaches ``--ratio`` (0.3) of the higher one's, else the higher. Each against
the cut's true density; a reading is right within ``--tolerance`` (8 %). Family C is split by whether the
cut has a lining canvas.

    python benchmarks/bench_yarn_lattice.py [--a-rolls 32 --a-seed 1000] [--c-rolls 96 --c-seed 0] [--json OUT]

Both collections are rendered in memory (``artlens.train.yarn.yarn_collection``, the cuts a yarn fit is
made on; ``familyc.rolls.make_collection``); about 10 minutes for the defaults on one core.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _spectral_reading(img: np.ndarray, ppc: float) -> dict[str, float]:
    """The spectral thread counter's plate reading per family: the median of its windows not flagged as
    outliers (threads/cm; NaN where none)."""
    from artlens.canvas.threads import count_threads_spectral

    res = count_threads_spectral(img, px_per_cm=ppc)
    out = {}
    for name, maps in (("horizontal", res.horizontal), ("vertical", res.vertical)):
        d = np.where(maps.outlier, np.nan, maps.density)
        out[name] = float(np.nanmedian(d)) if np.isfinite(d).any() else float("nan")
    return out


def _whitened_peak(norm: np.ndarray, ppc: float, name: str, density: float) -> float:
    """Largest whitened amplitude (the descriptor's tile spectrum over its ring median) within 6 % of
    ``density`` in the family's sector (within MAX_ANGLE_DEG of its axis)."""
    from artlens.canvas.yarn import MAX_ANGLE_DEG, _welch

    amp, big = _welch(norm, ppc)
    f = np.fft.fftfreq(big, 1.0 / ppc)
    fr, fx = np.meshgrid(f, f, indexing="ij")
    rad = np.hypot(fr, fx)
    ring = np.round(rad / (ppc / big)).astype(np.intp)
    med = np.array([np.median(amp[ring == k]) if (ring == k).any() else 1.0 for k in range(ring.max() + 1)])
    white = amp / (med[ring] + 1e-12)
    tan = np.tan(np.radians(MAX_ANGLE_DEG))
    if name == "horizontal":
        sector = (np.abs(fx) <= tan * np.abs(fr)) & (fr > 0)
    else:
        sector = (np.abs(fr) <= tan * np.abs(fx)) & (fx > 0)
    sector &= np.abs(rad / density - 1) <= 0.06
    return float(white[sector].max()) if sector.any() else 0.0


def _readings(image: np.ndarray, ppc: float, ratio: float) -> tuple[list[float], list[float], list[float]]:
    """[horizontal, vertical] densities: the descriptor's, the spectral counter's reading, and the rule
    tried on 2026-12-07 (where the two differ by more than 8 %, the lower when its whitened peak reaches
    ``ratio`` of the higher one's, else the higher)."""
    from scipy import ndimage

    from artlens.canvas.yarn import WORK_PX_PER_CM, _normalise, _ranks, yarn_descriptor

    d = yarn_descriptor(image, ppc)
    img = np.asarray(image, dtype=np.float64)
    work = ppc
    if ppc > WORK_PX_PER_CM * 1.05:
        img, work = ndimage.zoom(img, WORK_PX_PER_CM / ppc, order=1), WORK_PX_PER_CM
    ranks = _ranks(img)
    counter = _spectral_reading(ranks, work)
    norm = None
    desc, spec, rule = [], [], []
    for name in ("horizontal", "vertical"):
        own, other = d.families[name]["density"], counter[name]
        choice = own
        if np.isfinite(other) and abs(own / other - 1) > 0.08:
            norm = _normalise(ranks, work) if norm is None else norm
            lo, hi = sorted((own, other))
            choice = lo if _whitened_peak(norm, work, name, lo) >= ratio * _whitened_peak(norm, work, name, hi) else hi
        desc.append(own)
        spec.append(other)
        rule.append(choice)
    return desc, spec, rule


def _share_right(truth: list[float], read: list[float], tol: float) -> float:
    t, r = np.asarray(truth, float), np.asarray(read, float)
    return float(np.mean(np.abs(r / t - 1) < tol)) if t.size else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--a-rolls", type=int, default=32, help="artlens wide rolls (4 cuts each), a multiple of 8")
    ap.add_argument("--a-seed", type=int, default=1000)
    ap.add_argument("--c-rolls", type=int, default=96)
    ap.add_argument("--c-seed", type=int, default=0)
    ap.add_argument("--tolerance", type=float, default=0.08)
    ap.add_argument("--ratio", type=float, default=0.3, help="the tried rule's share of the higher peak")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    warnings.simplefilter("ignore", RuntimeWarning)
    from artlens.train.yarn import YarnTrainConfig, yarn_collection
    from familyc import rolls as family_c

    cfg = YarnTrainConfig()
    kw = {"family_size": cfg.family_size, "hard_spread": cfg.hard_spread, "canvas_cm": tuple(cfg.canvas_cm),
          "px_per_cm": tuple(cfg.px_per_cm), "density_range": tuple(cfg.density_range)}
    groups: dict[str, dict[str, list[float]]] = {}

    def add(group: str, truth: tuple[float, float], ppc: float, image: np.ndarray) -> None:
        desc, spec, rule = _readings(image, ppc, args.ratio)
        if abs(desc[0] - truth[0]) + abs(desc[1] - truth[1]) > abs(desc[0] - truth[1]) + abs(desc[1] - truth[0]):
            truth = (truth[1], truth[0])  # artlens cuts may be turned: pair by the closer assignment
        g = groups.setdefault(group, {"truth": [], "descriptor": [], "spectral": [], "rule": []})
        g["truth"] += list(truth)
        g["descriptor"] += desc
        g["spectral"] += spec
        g["rule"] += rule

    for k in range(args.a_rolls // 8):
        for c in yarn_collection(8, 4, seed=args.a_seed + k, **kw):
            add("artlens wide", c.densities, c.px_per_cm, c.image)
    for c in family_c.make_collection(args.c_rolls, 4, seed=args.c_seed):
        add("family C, lining" if c["meta"]["lining"] else "family C, no lining", c["densities"], c["px_per_cm"],
            c["image"])
    out = {}
    for name, g in groups.items():
        out[name] = {"directions": len(g["truth"]),
                     "descriptor_right": _share_right(g["truth"], g["descriptor"], args.tolerance),
                     "spectral_counter_right": _share_right(g["truth"], g["spectral"], args.tolerance),
                     "rule_right": _share_right(g["truth"], g["rule"], args.tolerance)}
        r = out[name]
        print(f"{name:22s} directions {r['directions']:4d}  descriptor right {r['descriptor_right']:.3f}"
              f"  spectral counter right {r['spectral_counter_right']:.3f}"
              f"  rule right {r['rule_right']:.3f}")
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "results": out}, indent=2))


if __name__ == "__main__":
    main()
