"""Fitting the yarn-statistics comparison of canvases (``artlens canvas train --method yarn``).

The descriptor (:func:`artlens.canvas.yarn.yarn_descriptor`) is fixed, training-free; what is fitted
is how much each of its differences says about "same roll":

1. **Data.** Canvases of synthetic rolls with *wide* randomisation
   (:func:`artlens.train.fabric.wide_collection`: every yarn factor drawn per roll over a wide range,
   imaging conditions drawn per cut so that they carry no roll information, rolls in families of
   ``family_size`` within ``hard_spread`` threads/cm; ``imaging="wider"`` adds interstice lattices,
   lining canvases and banding to the cuts, :func:`yarn_collection`), generated in chunks of ``chunk_rolls`` rolls
   (chunk ``k`` from seed ``seed + k``, so a run can be resumed and split over processes), and/or a
   lab's plates (``--data plates.csv`` with columns ``plate,roll``). Each canvas is described once;
   the descriptors are kept in ``RUN/descriptors.jsonl`` (a resumed run only describes the missing ones).
   ``density_drift`` multiplies each synthetic cut's measured densities by ``exp(N(0, density_drift))``
   (:func:`drift_densities`: a bolt's density drifts along it; a synthetic roll's does not).
2. **Split by roll family**: ``calib_fraction`` of the families are held out for calibration and
   for the reported metrics; the rest fit the comparison.
3. **Fit.** For all pairs of canvases within a family (the hard pairs: densities within
   ``hard_spread``) and ``cross_pairs`` times as many random pairs across families, the absolute
   descriptor differences (:func:`artlens.canvas.yarn.pair_features`) are divided by their median
   over same-roll pairs (``scale``), missing values replaced by the mid-point of the two classes'
   medians, transformed by ``log(1 + x)``, and a logistic regression with non-positive weights and
   an L2 penalty ``l2`` is fitted with the two classes weighted equally.
4. **Calibration.** A Platt scaling of the fitted logit on the held-out hard pairs
   (:func:`artlens.models.calibration.fit_platt`, even prior odds), so that the probability is
   calibrated where it matters: rolls whose densities density matching cannot tell apart.

The run directory holds ``config.json``, ``descriptors.jsonl``, ``calibration.csv`` (held-out pairs:
logit, probability, label), ``metrics.json`` and ``model/`` (``model.safetensors`` + ``config.json``
with ``"model": "yarn_logistic"``, the feature names, the calibration and the metrics), which
``artlens canvas compare --fabric-model RUN/model`` loads.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import os
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from artlens.errors import InvalidParameterError
from artlens.models.calibration import fit_platt, roc_auc
from artlens.train.runs import open_run
from artlens.train.splits import holdout_split


class YarnTrainConfig(BaseModel):
    """Everything that defines a yarn-comparison fit (saved as ``RUN/config.json``)."""

    synthetic: int = 192  # synthetic rolls
    canvases_per_roll: int = 4
    chunk_rolls: int = 8  # rolls per generation chunk (chunk k uses seed + k)
    family_size: int = 4
    hard_spread: float = 0.3
    canvas_cm: tuple[float, float] = (3.5, 6.0)
    px_per_cm: tuple[float, float] = (80.0, 220.0)
    density_range: tuple[float, float] = (8.0, 22.0)
    data: str | None = None  # CSV plate,roll
    calib_fraction: float = 0.25
    cross_pairs: float = 0.5  # random cross-family pairs per within-family pair
    l2: float = 0.01
    seed: int = 1000
    workers: int = 2
    imaging: str = "wide"  # "wide" or "wider" (:func:`yarn_collection`: interstice lattices, lining, banding added)
    density_drift: float = 0.0  # relative sd of each synthetic cut's density about its roll's (:func:`drift_densities`)
    recalibrate: str | None = None  # keep this fitted comparison, refit its calibration (recalibrate_yarn_model)


def extra_imaging(rng: np.random.Generator) -> dict[str, Any]:
    """Imaging conditions that ``imaging="wider"`` adds to :func:`artlens.train.fabric.wide_imaging`, per cut
    and independently of its roll: a spot at every interstice (ground filling all the gaps or none of them,
    35 % of cuts, strength 0.3-2 either sign), a lining canvas seen through the plate (20 %, contrast
    0.1-0.6) and scanner/film banding (30 %, 0.05-0.5)."""
    out: dict[str, Any] = {"interstice_lattice": 0.0, "lining": 0.0, "banding": 0.0}
    if rng.uniform() < 0.35:
        out["interstice_lattice"] = float(rng.uniform(0.3, 2.0) * (1 if rng.uniform() < 0.5 else -1))
    if rng.uniform() < 0.2:
        out["lining"] = float(rng.uniform(0.1, 0.6))
    if rng.uniform() < 0.3:
        out["banding"] = float(rng.uniform(0.05, 0.5))
    return out


def yarn_collection(n_rolls: int, canvases_per_roll: int, *, seed: int = 0, imaging: str = "wide",
                    **kw: Any) -> list[Any]:
    """The canvases a yarn fit is made on: :func:`artlens.train.fabric.wide_collection` (``imaging="wide"``) or
    the same rolls, cuts and imaging draws with :func:`extra_imaging` added to every cut (``"wider"``; the
    extra factors come from a separate random stream seeded by ``(seed, 7)``, so the two collections differ
    only in them). ``kw``: the keywords of ``wide_collection``."""
    from artlens.train.fabric import wide_collection

    if imaging == "wide":
        return wide_collection(n_rolls, canvases_per_roll, seed=seed, **kw)
    if imaging != "wider":
        raise InvalidParameterError(f"imaging must be 'wide' or 'wider', got {imaging!r}", param="imaging")
    import artlens.train.fabric as fabric

    extra_rng = np.random.default_rng([seed, 7])
    base = fabric.wide_imaging

    def imaging_plus(rng: np.random.Generator, ppc: float, dens: tuple[float, float]) -> dict[str, Any]:
        return {**base(rng, ppc, dens), **extra_imaging(extra_rng)}

    fabric.wide_imaging = imaging_plus  # type: ignore[assignment]
    try:
        return wide_collection(n_rolls, canvases_per_roll, seed=seed, **kw)
    finally:
        fabric.wide_imaging = base  # type: ignore[assignment]


def _describe_chunk(args: tuple[int, int, int, int, dict[str, Any]]) -> list[dict[str, Any]]:
    """Render chunk ``k`` of the collection and describe its canvases (runs in a worker process)."""
    from artlens.canvas.yarn import yarn_descriptor

    k, n_rolls, cpr, seed, kw = args
    kw = dict(kw)
    imaging = kw.pop("imaging", "wide")
    rows = []
    for c in yarn_collection(n_rolls, cpr, seed=seed, imaging=imaging, **kw):
        try:
            desc: dict[str, Any] = yarn_descriptor(c.image, c.px_per_cm).to_dict()
        except Exception as exc:  # noqa: BLE001 - a canvas without a measurable weave is skipped, not fatal
            desc = {"error": f"{type(exc).__name__}: {exc}"}
        rows.append({"name": f"chunk{k:03d}-{c.name}", "roll": f"synthetic-{k * n_rolls + c.roll}",
                     "family": f"synthetic-{(k * n_rolls + c.roll) // kw['family_size']}",
                     "densities": list(c.densities), "px_per_cm": c.px_per_cm, "desc": desc})
    return rows


def describe_synthetic(cfg: YarnTrainConfig, cache: Path, progress: Any = None) -> list[dict[str, Any]]:
    """Descriptors of the synthetic canvases, chunk by chunk, appended to ``cache`` (JSON lines) and
    reused from it when present."""
    if cfg.chunk_rolls % cfg.family_size:
        raise InvalidParameterError("chunk_rolls must be a multiple of family_size (families must not straddle chunks)")
    n_chunks = math.ceil(cfg.synthetic / cfg.chunk_rolls)
    have: dict[str, list[dict[str, Any]]] = {}
    if cache.is_file():
        for line in cache.read_text().splitlines():
            r = json.loads(line)
            have.setdefault(r["name"].split("-")[0], []).append(r)
    kw: dict[str, Any] = {"family_size": cfg.family_size, "hard_spread": cfg.hard_spread,
                          "canvas_cm": tuple(cfg.canvas_cm), "px_per_cm": tuple(cfg.px_per_cm),
                          "density_range": tuple(cfg.density_range)}
    if cfg.imaging != "wide":
        kw["imaging"] = cfg.imaging
    todo = [(k, cfg.chunk_rolls, cfg.canvases_per_roll, cfg.seed + k, kw) for k in range(n_chunks)
            if len(have.get(f"chunk{k:03d}", [])) != cfg.chunk_rolls * cfg.canvases_per_roll]
    if todo:
        with cache.open("a") as fh:
            if cfg.workers > 1:
                ex = ProcessPoolExecutor(cfg.workers)
                results = ex.map(_describe_chunk, todo)
            else:
                ex, results = None, map(_describe_chunk, todo)
            try:
                for args, rows in zip(todo, results, strict=True):
                    have[f"chunk{args[0]:03d}"] = rows
                    fh.write("".join(json.dumps(r) + "\n" for r in rows))
                    fh.flush()
                    if progress:
                        progress(f"described chunk {args[0] + 1}/{n_chunks}")
            finally:
                if ex is not None:
                    ex.shutdown()
    rows = [r for k in range(n_chunks) for r in have.get(f"chunk{k:03d}", [])]
    n_roll_max = cfg.synthetic
    return [r for r in rows if int(r["roll"].split("-")[1]) < n_roll_max]


def drift_densities(descs: list[Any], sd: float, seed: int) -> list[Any]:
    """Copies of the descriptors with each thread family's ``density`` multiplied by ``exp(N(0, sd))``,
    independently per canvas and family (seeded).

    A synthetic roll keeps its nominal densities everywhere, but a real bolt's density drifts along it
    (the weft's beating and the warp's tension vary: cuts of one roll commonly differ by a few tenths of a
    thread/cm, Johnson et al. 2010), so a cut's density is not its roll's. Every other yarn statistic is in
    units of the thread spacing and does not change with such a drift, so it is applied to the descriptor
    (what a stretch of the rendered cut would give) rather than to the rendering."""
    from artlens.canvas.yarn import YarnDescriptor

    if sd <= 0:
        return list(descs)
    rng = np.random.default_rng([seed, 11])
    out = []
    for d in descs:
        fams = {k: dict(v) for k, v in d.families.items()}
        for k in sorted(fams):
            fams[k]["density"] = fams[k]["density"] * math.exp(float(rng.normal(0.0, sd)))
        out.append(YarnDescriptor(fams, dict(d.global_features), d.px_per_cm, d.threads_bright, list(d.notes)))
    return out


def describe_labelled(csv_path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Descriptors of a lab's plates (CSV ``plate,roll`` and optional ``px_per_cm`` and ``family``).

    Pairs within a family are the fit's hard pairs (every within-family pair is used); a ``family`` column
    groups rolls of similar density into families, as the synthetic rolls are. Without it all rolls of
    the lab's collection form one family."""
    from artlens.canvas.yarn import yarn_descriptor
    from artlens.io import open_plate
    from artlens.train.fabric import read_roll_manifest

    rows = []
    for it in read_roll_manifest(csv_path):
        p, ppc = it["path"], it["px_per_cm"]
        with open_plate(p, ppc, require_resolution=True) as plate:
            try:
                desc: dict[str, Any] = yarn_descriptor(plate).to_dict()
            except Exception as exc:  # noqa: BLE001
                desc = {"error": f"{type(exc).__name__}: {exc}"}
            family = f"lab-{it['family']}" if it.get("family") else "lab"
            rows.append({"name": p.name, "roll": f"lab-{it['roll']}", "family": family, "densities": None,
                         "px_per_cm": plate.require_px_per_cm(), "desc": desc})
    return rows


# -- fitting ---------------------------------------------------------------------------------------


def pair_table(rows: list[dict[str, Any]], descs: list[Any], *, cross_pairs: float, seed: int,
               scale: np.ndarray | None = None, summed: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All within-family pairs and ``cross_pairs`` × as many random cross-family pairs.

    Args:
        scale: pairing scale of :func:`artlens.canvas.yarn.pairing_differences` (None: pair by density).
        summed: return the summed per-family differences (what the pairing scale is fitted on) instead of
            :func:`artlens.canvas.yarn.pair_features`.

    Returns:
        ``(raw differences (P, F), same_roll (P,), hard (P,) bool)``.
    """
    from artlens.canvas.yarn import pair_features, pairing_differences

    def feats(a: Any, b: Any) -> np.ndarray:
        return pairing_differences(a, b, scale)[0] if summed else pair_features(a, b, scale)[0]

    within: list[tuple[int, int]] = []
    cross: list[tuple[int, int]] = []
    for i, j in itertools.combinations(range(len(rows)), 2):
        (within if rows[i]["family"] == rows[j]["family"] else cross).append((i, j))
    rng = np.random.default_rng(seed)
    n_cross = min(len(cross), int(round(cross_pairs * len(within))))
    if n_cross:
        cross = [cross[k] for k in rng.choice(len(cross), n_cross, replace=False)]
    else:
        cross = []
    pairs = within + cross
    raw = np.array([feats(descs[i], descs[j]) for i, j in pairs]).reshape(len(pairs), -1)
    y = np.array([int(rows[i]["roll"] == rows[j]["roll"]) for i, j in pairs])
    hard = np.array([True] * len(within) + [False] * len(cross), dtype=bool)
    return raw, y, hard


def fit_comparison(raw: np.ndarray, y: np.ndarray, l2: float = 0.01) -> dict[str, np.ndarray]:
    """Scales, imputation values and non-positive logistic weights (see the module docstring).

    Returns:
        ``{"scale", "impute", "weight", "bias"}`` as float64 arrays (bias of shape (1,)).
    """
    from scipy.optimize import minimize

    if not (0 < y.sum() < len(y)):
        raise InvalidParameterError("fitting needs same-roll and different-roll pairs")
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (a feature never measured)
        scale = np.nanmedian(raw[y == 1], axis=0)
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0) + 1e-9
        x = raw / scale
        imp = 0.5 * (np.nanmedian(x[y == 1], axis=0) + np.nanmedian(x[y == 0], axis=0))
    imp = np.where(np.isfinite(imp), imp, 1.0)
    X = np.log1p(np.where(np.isnan(x), imp, x))
    wts = np.where(y == 1, 0.5 / y.sum(), 0.5 / (1 - y).sum())

    def nll(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = X @ w[:-1] + w[-1]
        p = 0.5 * (1 + np.tanh(0.5 * z))
        g = wts * (p - y)
        f = float(np.sum(wts * (np.logaddexp(0, z) - y * z)) + l2 * np.sum(w[:-1] ** 2))
        return f, np.concatenate([X.T @ g + 2 * l2 * w[:-1], [g.sum()]])

    bounds = [(None, 0.0)] * X.shape[1] + [(None, None)]
    w = minimize(nll, np.zeros(X.shape[1] + 1), jac=True, method="L-BFGS-B", bounds=bounds).x
    return {"scale": scale, "impute": imp, "weight": w[:-1], "bias": w[-1:]}


def comparison_logits(raw: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
    """Logits of raw differences under fitted parameters (same maths as :class:`artlens.models.yarn.YarnLogistic`)."""
    x = raw / p["scale"]
    x = np.where(np.isnan(x), p["impute"], x)
    return np.log1p(x) @ p["weight"] + p["bias"][0]


def reliability_table(prob: np.ndarray, y: np.ndarray, bins: int = 10) -> list[dict[str, Any]]:
    """Reliability diagram as rows ``{"bin": [lo, hi], "n", "mean_predicted", "observed"}`` (empty bins left out)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    out = []
    for k in range(bins):
        m = (prob >= edges[k]) & ((prob < edges[k + 1]) if k < bins - 1 else (prob <= 1.0))
        if m.any():
            out.append({"bin": [round(float(edges[k]), 2), round(float(edges[k + 1]), 2)], "n": int(m.sum()),
                        "mean_predicted": float(prob[m].mean()), "observed": float(y[m].mean())})
    return out


def train_yarn_model(cfg: YarnTrainConfig, run_dir: str | os.PathLike[str], *, resume: bool = False,
                     progress: Any = None) -> dict[str, Any]:
    """Describe the canvases, fit the comparison, calibrate it on held-out roll families, save ``RUN/model``;
    with ``cfg.recalibrate``, keep that comparison and refit only its calibration (:func:`recalibrate_yarn_model`).

    Returns:
        ``{"model": path, "metrics": {...}, "calibration": {...}, "run": path}`` (no ``metrics`` for a
        recalibration).
    """
    if cfg.recalibrate is not None:
        return recalibrate_yarn_model(cfg, run_dir, resume=resume, progress=progress)
    import torch

    from artlens import __version__
    from artlens.canvas.yarn import FAMILY_FEATURES, GLOBAL_FEATURES, PAIR_FEATURES, WORK_PX_PER_CM, YarnDescriptor
    from artlens.models.checkpoint import save_checkpoint
    from artlens.models.yarn import YarnLogistic

    if cfg.imaging not in ("wide", "wider"):
        raise InvalidParameterError(f"imaging must be 'wide' or 'wider', got {cfg.imaging!r}", param="imaging")
    if not 0 <= cfg.density_drift <= 0.2:
        raise InvalidParameterError("density_drift must lie in [0, 0.2]", param="density_drift")
    run, cfg = open_run(run_dir, cfg, resume=resume)
    rows: list[dict[str, Any]] = []
    sources = []
    if cfg.synthetic:
        rows += describe_synthetic(cfg, run / "descriptors.jsonl", progress)
        sources.append(f"synthetic ({'wide' if cfg.imaging == 'wide' else 'wide + extra imaging'} randomisation"
                       + (f", density drift {cfg.density_drift:g})" if cfg.density_drift > 0 else ")"))
    if cfg.data:
        rows += describe_labelled(cfg.data)
        sources.append("labelled")
    if not rows:
        raise InvalidParameterError("nothing to fit on: give a number of `synthetic` rolls and/or `data` (a plates "
                                    "CSV)", param="data")
    failed = [r for r in rows if "error" in r["desc"]]
    rows = [r for r in rows if "error" not in r["desc"]]
    descs = [YarnDescriptor.from_dict(r["desc"]) for r in rows]
    if cfg.density_drift > 0:  # synthetic cuts only: a lab's plates carry their own drift
        syn = [i for i, r in enumerate(rows) if str(r["family"]).startswith("synthetic")]
        for i, d in zip(syn, drift_densities([descs[i] for i in syn], cfg.density_drift, cfg.seed), strict=True):
            descs[i] = d
    families = [r["family"] for r in rows]  # whole roll families on one side
    split = holdout_split(families, val_fraction=cfg.calib_fraction, seed=cfg.seed)
    fit_idx, cal_idx = split["train"].tolist(), split["val"].tolist()
    held = {families[i] for i in cal_idx}
    if not fit_idx or not cal_idx:
        raise InvalidParameterError("need at least two roll families (one to fit, one to calibrate on)")

    def sub(idx: list[int]) -> tuple[list[dict[str, Any]], list[Any]]:
        return [rows[i] for i in idx], [descs[i] for i in idx]

    # first pass pairs the thread families by density; the second by all features at the first pass' scales
    raw0, y0, _ = pair_table(*sub(fit_idx), cross_pairs=cfg.cross_pairs, seed=cfg.seed, summed=True)
    scale0 = fit_comparison(raw0, y0, cfg.l2)["scale"]
    raw, y, hard = pair_table(*sub(fit_idx), cross_pairs=cfg.cross_pairs, seed=cfg.seed, scale=scale0)
    params = fit_comparison(raw, y, cfg.l2)
    params["pairing_scale"] = scale0
    raw_c, y_c, hard_c = pair_table(*sub(cal_idx), cross_pairs=cfg.cross_pairs, seed=cfg.seed + 1, scale=scale0)
    logit_c = comparison_logits(raw_c, params)
    cal: dict[str, Any] = {"method": "platt", "fitted_on": "held-out hard pairs (roll families within "
                           f"{cfg.hard_spread} threads/cm)", "n_pairs": int(hard_c.sum()),
                           "n_same_roll": int(y_c[hard_c].sum()), "n_canvases": len(cal_idx)}
    if 0 < y_c[hard_c].sum() < hard_c.sum():
        a, b = fit_platt(logit_c[hard_c], y_c[hard_c])
        cal.update(a=a, b=b, fitted=True)
    else:
        cal.update(a=1.0, b=0.0, fitted=False, note="held-out pairs lack one class; identity calibration")
    z = cal["a"] * logit_c + cal["b"]
    prob = 1 / (1 + np.exp(-z))
    metrics: dict[str, Any] = {
        "fit_pairs": int(len(y)), "fit_same_roll": int(y.sum()), "fit_auc": roc_auc(comparison_logits(raw, params), y),
        "fit_auc_hard": roc_auc(comparison_logits(raw[hard], params), y[hard]),
        "heldout_auc_hard": roc_auc(logit_c[hard_c], y_c[hard_c]), "heldout_auc_all": roc_auc(logit_c, y_c),
        "heldout_canvases": len(cal_idx), "fit_canvases": len(fit_idx), "failed_canvases": len(failed),
    }
    base = float(y_c[hard_c].mean()) if hard_c.any() else float("nan")
    if 0 < base < 1:  # the even-odds probability moved to the held-out pairs' share of same-roll pairs
        shifted = 1 / (1 + np.exp(-(z[hard_c] + math.log(base / (1 - base)))))
        metrics["heldout_reliability_at_base_rate"] = {"base_rate": base,
                                                       "bins": reliability_table(shifted, y_c[hard_c])}
    metrics = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in metrics.items()}
    with (run / "calibration.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["logit", "probability", "same_roll", "hard"])
        w.writerows([[f"{lg:.6g}", f"{p:.6g}", int(t), int(h)] for lg, p, t, h in zip(logit_c, prob, y_c, hard_c,
                                                                                      strict=True)])
    module = YarnLogistic(len(PAIR_FEATURES))
    with torch.no_grad():
        module.scale.copy_(torch.from_numpy(params["scale"]))
        module.impute.copy_(torch.from_numpy(params["impute"]))
        module.weight.copy_(torch.from_numpy(params["weight"]))
        module.bias.copy_(torch.from_numpy(params["bias"]))
    out = save_checkpoint(module, "yarn_logistic", {"n_features": len(PAIR_FEATURES)}, run / "model", extra={
        "task": "fabric_similarity", "method": "yarn-statistics",
        "output": "logit that two canvases come from the same roll, from the differences of their yarn statistics",
        "features": list(PAIR_FEATURES), "family_features": list(FAMILY_FEATURES),
        "global_features": list(GLOBAL_FEATURES), "pairing_scale": [float(v) for v in scale0],
        "work_px_per_cm": WORK_PX_PER_CM, "calibration": cal,
        "training": {"config": cfg.model_dump(), "sources": sources, "n_canvases": len(rows),
                     "heldout_families": sorted(held)},
        "metrics": metrics, "artlens_version": __version__,
    })
    (run / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return {"model": str(out), "metrics": metrics, "calibration": cal, "run": str(run)}


def recalibrate_yarn_model(cfg: YarnTrainConfig, run_dir: str | os.PathLike[str], *, resume: bool = False,
                           progress: Any = None) -> dict[str, Any]:
    """Keep the fitted comparison ``cfg.recalibrate`` (a model folder or a shipped name such as ``fabric_default``)
    and refit only its Platt calibration (``canvas train --method yarn --recalibrate``).

    The comparison's weights are kept bit for bit; the calibration is fitted on every pair of canvases within a
    roll family (the hard pairs: synthetic families within ``hard_spread`` threads/cm, or all of a lab's plates)
    of the canvases ``cfg`` describes, e.g. ``imaging="wider"`` rolls, a family of data the comparison was not
    fitted on. ``config.json`` records the previous calibration under ``calibration.recalibration``.

    Returns:
        ``{"model": path, "calibration": {...}, "run": path}``.
    """
    import torch

    from artlens import __version__
    from artlens.canvas.fabric import YarnModel, load_fabric_model
    from artlens.canvas.yarn import PAIR_FEATURES, YarnDescriptor
    from artlens.models.checkpoint import save_checkpoint
    from artlens.models.yarn import YarnLogistic

    if cfg.imaging not in ("wide", "wider"):
        raise InvalidParameterError(f"imaging must be 'wide' or 'wider', got {cfg.imaging!r}", param="imaging")
    if not 0 <= cfg.density_drift <= 0.2:
        raise InvalidParameterError("density_drift must lie in [0, 0.2]", param="density_drift")
    model = cfg.recalibrate
    if model is None:
        raise InvalidParameterError("`recalibrate` names the fitted comparison to keep", param="recalibrate")
    base = load_fabric_model(model)
    if not isinstance(base, YarnModel):
        raise InvalidParameterError(f"{model}: a {base.method} model; `recalibrate` keeps a yarn-statistics "
                                    "comparison (e.g. fabric_default)", param="recalibrate")
    run, cfg = open_run(run_dir, cfg, resume=resume)
    rows: list[dict[str, Any]] = []
    sources = []
    if cfg.synthetic:
        rows += describe_synthetic(cfg, run / "descriptors.jsonl", progress)
        sources.append(f"synthetic ({cfg.imaging} imaging" + (f", density drift {cfg.density_drift:g})"
                                                              if cfg.density_drift > 0 else ")"))
    if cfg.data:
        rows += describe_labelled(cfg.data)
        sources.append("labelled")
    rows = [r for r in rows if "error" not in r["desc"]]
    descs = [YarnDescriptor.from_dict(r["desc"]) for r in rows]
    if cfg.density_drift > 0:
        syn = [i for i, r in enumerate(rows) if str(r["family"]).startswith("synthetic")]
        for i, d in zip(syn, drift_densities([descs[i] for i in syn], cfg.density_drift, cfg.seed), strict=True):
            descs[i] = d
    pairs = [(i, j) for i, j in itertools.combinations(range(len(rows)), 2) if rows[i]["family"] == rows[j]["family"]]
    y = np.array([int(rows[i]["roll"] == rows[j]["roll"]) for i, j in pairs])
    if not pairs or y.min() == y.max():
        raise InvalidParameterError("recalibration needs same-roll and different-roll pairs within roll families: "
                                    "give more `synthetic` rolls, or `data` with several rolls", param="synthetic")
    logit = np.array([base.logit(descs[i], descs[j])[0] for i, j in pairs])
    a, b = fit_platt(logit, y)
    previous = {k: v for k, v in base.config.get("calibration", {}).items() if k != "recalibration"}
    cal = {"method": "platt", "fitted_on": f"all hard pairs of {'; '.join(sources)} canvases (the comparison "
           "kept, only the calibration refitted)", "n_pairs": len(pairs), "n_same_roll": int(y.sum()),
           "n_canvases": len(rows), "a": a, "b": b, "fitted": True,
           "recalibration": {"model": str(model), "previous": previous, "training": cfg.model_dump(),
                             "artlens_version": __version__}}
    prob = 1 / (1 + np.exp(-(a * logit + b)))
    with (run / "calibration.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["logit", "probability", "same_roll"])
        w.writerows([[f"{lg:.6g}", f"{p:.6g}", int(t)] for lg, p, t in zip(logit, prob, y, strict=True)])
    module = YarnLogistic(len(PAIR_FEATURES))
    with torch.no_grad():
        module.scale.copy_(torch.from_numpy(base.scale))
        module.impute.copy_(torch.from_numpy(base.impute))
        module.weight.copy_(torch.from_numpy(base.weight))
        module.bias.copy_(torch.tensor([base.bias], dtype=module.bias.dtype))
    extra = {k: v for k, v in base.config.items() if k not in ("model", "kwargs", "sha256", "files", "calibration")}
    out = save_checkpoint(module, "yarn_logistic", base.config["kwargs"], run / "model",
                          extra=extra | {"calibration": cal})
    saved = json.loads((out / "config.json").read_text())
    if saved.get("sha256") != base.config.get("sha256"):
        raise RuntimeError("the recalibrated model's weights differ from the kept comparison's")  # never expected
    return {"model": str(out), "calibration": cal, "run": str(run)}
