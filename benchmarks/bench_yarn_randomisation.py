"""Issue 18, yarn statistics: what the extra imaging of ``imaging="wider"`` does to the descriptor, and
whether refitting the comparison on it (and/or with a cut-level density drift) helps — on artlens' own
held-out rolls only (family B is not touched here).

1. **Descriptors.** For each seed, 8 wide rolls × 4 cuts (:func:`artlens.train.yarn.yarn_collection`, the
   keywords of ``canvas train --method yarn``) are rendered twice — ``imaging="wide"`` and ``"wider"``: the
   same rolls, cuts and imaging draws, the second with interstice lattices, lining canvases and banding
   added — and described; rows go to ``CACHE/{wide,wider}.jsonl`` (reused when present). ``mix50`` takes
   each cut's ``wider`` version with probability 1/2 (stream ``(seed, 13)``), else its ``wide`` one.
2. **Sensitivity** (paired): for every cut, the mean |wide − wider| of each family feature (log scale for
   :data:`artlens.canvas.yarn.LOG_FEATURES`) over the two thread families, in units of the feature's spread
   over all wide cuts, for cuts with and without an interstice lattice; and per feature the ratio of the
   mean same-roll to the mean different-roll difference within the density families (lower: more
   discriminating), wide vs wider.
3. **Fits.** The comparison of :mod:`artlens.train.yarn` (``train_yarn_model``: a quarter of the roll
   families held out for the calibration) fitted on ``--fit-seeds`` of each variant, with ``density_drift``
   0 and 0.01; with the shipped ``fabric_default``, the hard-pair (same density family) ROC-AUC on the
   selection seeds of each variant, with and without a 1 % density drift of the selection cuts.

    python benchmarks/bench_yarn_randomisation.py --cache runs/yarn-rand [--sel-seeds 5000-5003]
        [--fit-seeds 1000-1007] [--workers 2]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

KW = {"family_size": 4, "hard_spread": 0.3, "canvas_cm": (3.5, 6.0), "px_per_cm": (80.0, 220.0),
      "density_range": (8.0, 22.0)}


def seeds(text: str) -> list[int]:
    a, _, b = text.partition("-")
    return list(range(int(a), int(b or a) + 1))


def _js(o: Any) -> Any:
    if isinstance(o, dict):
        return {k: _js(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_js(v) for v in o]
    if isinstance(o, np.floating | np.integer | np.bool_):
        return o.item()
    return o


def describe(args: tuple[str, int]) -> list[dict[str, Any]]:
    from artlens.canvas.yarn import yarn_descriptor
    from artlens.train.yarn import yarn_collection

    imaging, s = args
    rows = []
    for c in yarn_collection(8, 4, seed=s, imaging=imaging, **KW):  # type: ignore[arg-type]
        try:
            d = yarn_descriptor(c.image, c.px_per_cm).to_dict()
        except Exception as exc:  # noqa: BLE001 - reported as a failed cut
            d = {"error": str(exc)}
        rows.append({"seed": s, "roll": f"{s}-{c.roll}", "family": f"{s}-{c.roll // 4}", "px_per_cm": c.px_per_cm,
                     "meta": _js(c.meta), "desc": d})
    return rows


def ensure(cache: Path, imaging: str, wanted: list[int], workers: int) -> list[dict[str, Any]]:
    path = cache / f"{imaging}.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines()] if path.is_file() else []
    have = {r["seed"] for r in rows}
    todo = [(imaging, s) for s in wanted if s not in have]
    if todo:
        with path.open("a") as fh, ProcessPoolExecutor(max(1, workers)) as ex:
            for chunk in ex.map(describe, todo):
                fh.write("".join(json.dumps(r) + "\n" for r in chunk))
                fh.flush()
                rows += chunk
                print(f"described {imaging} seed {chunk[0]['seed']}", flush=True)
    return [r for r in rows if r["seed"] in set(wanted)]


def mix(wide: list[dict[str, Any]], wider: list[dict[str, Any]], frac: float = 0.5) -> list[dict[str, Any]]:
    out, cur, rng = [], None, np.random.default_rng(0)
    for a, b in zip(wide, wider, strict=True):
        assert a["roll"] == b["roll"] and a["px_per_cm"] == b["px_per_cm"]
        if a["seed"] != cur:
            cur, rng = a["seed"], np.random.default_rng([a["seed"], 13])
        out.append(b if rng.uniform() < frac else a)
    return out


def sensitivity(wide: list[dict[str, Any]], wider: list[dict[str, Any]]) -> None:
    from artlens.canvas.yarn import FAMILY_FEATURES, LOG_FEATURES

    def val(r: dict[str, Any], fam: str, f: str) -> float:
        v = r["desc"]["global"]["relief"] if f == "relief" else r["desc"]["families"][fam][f]
        if v is None:
            return float("nan")
        return math.log(max(v, 1e-3)) if f in LOG_FEATURES else float(v)

    ok = [(a, b) for a, b in zip(wide, wider, strict=True) if "error" not in a["desc"] and "error" not in b["desc"]]
    lat = [b["meta"]["imaging"]["interstice_lattice"] != 0 for _, b in ok]
    flips = sum(a["desc"]["threads_bright"] != b["desc"]["threads_bright"] for a, b in ok)
    print(f"\n== sensitivity: {len(ok)} cuts described both ways, {sum(lat)} with an interstice lattice; "
          f"polarity changed on {flips}")
    feats = (*FAMILY_FEATURES, "relief")
    fams = ("horizontal", "vertical")

    def ratio(rows: list[dict[str, Any]], f: str) -> float:
        same, diff = [], []
        for a, b in itertools.combinations(rows, 2):
            if a["family"] != b["family"]:
                continue
            da = [a["desc"]["families"][k]["density"] for k in fams]
            db = [b["desc"]["families"][k]["density"] for k in fams]
            swap = abs(da[0] - db[1]) + abs(da[1] - db[0]) < abs(da[0] - db[0]) + abs(da[1] - db[1])
            pairs = list(zip(fams, fams[::-1] if swap else fams, strict=True))
            x = float(np.nanmean([abs(val(a, p, f) - val(b, q, f)) for p, q in pairs]))
            (same if a["roll"] == b["roll"] else diff).append(x)
        return float(np.nanmean(same) / np.nanmean(diff))

    print(f"  {'feature':22s} {'|wide-wider|/sd: all':>21s} {'lattice':>8s} {'none':>6s}  "
          f"same/diff-roll: wide  wider")
    with np.errstate(all="ignore"):
        for f in feats:
            sd = float(np.nanstd([val(a, k, f) for a, _ in ok for k in fams]))
            d = np.array([np.nanmean([abs(val(a, k, f) - val(b, k, f)) for k in fams]) for a, b in ok]) / sd
            m = np.array(lat)
            print(f"  {f:22s} {np.nanmean(d):21.2f} {np.nanmean(d[m]):8.2f} {np.nanmean(d[~m]):6.2f}  "
                  f"{ratio([a for a, _ in ok], f):19.3f} {ratio([b for _, b in ok], f):6.3f}")


def evaluate(p: dict[str, np.ndarray], rows: list[dict[str, Any]], drift: float) -> float:
    from artlens.canvas.yarn import YarnDescriptor
    from artlens.models.calibration import roc_auc
    from artlens.train.yarn import comparison_logits, drift_densities, pair_table

    rows = [r for r in rows if "error" not in r["desc"]]
    descs = drift_densities([YarnDescriptor.from_dict(r["desc"]) for r in rows], drift, 4242)
    raw, y, hard = pair_table(rows, descs, cross_pairs=1.0, seed=1, scale=p["pairing_scale"])
    return roc_auc(comparison_logits(raw, p)[hard], y[hard])


def params(folder: str | Path) -> dict[str, np.ndarray]:
    from artlens.canvas.fabric import load_fabric_model

    m = load_fabric_model(folder)
    assert m.kind == "yarn"
    return {"scale": m.scale, "impute": m.impute, "weight": m.weight, "bias": np.array([m.bias]),  # type: ignore[union-attr]
            "pairing_scale": np.asarray(m.config["pairing_scale"])}


def fit_run(rows: list[dict[str, Any]], imaging: str, drift: float, fit_seeds: list[int], run: Path) -> Path:
    """``train_yarn_model`` on these descriptors (written as the run's descriptor cache)."""
    from artlens.train.yarn import YarnTrainConfig, train_yarn_model

    run.mkdir(parents=True)
    lines, count = [], {}
    for r in rows:
        k, rl = fit_seeds.index(r["seed"]), int(r["roll"].split("-")[1])
        c = count[r["roll"]] = count.get(r["roll"], -1) + 1
        lines.append(json.dumps({"name": f"chunk{k:03d}-roll{rl:03d}-canvas{c:02d}", "roll": f"synthetic-{k * 8 + rl}",
                                 "family": f"synthetic-{(k * 8 + rl) // 4}", "densities": None,
                                 "px_per_cm": r["px_per_cm"], "desc": r["desc"]}))
    (run / "descriptors.jsonl").write_text("\n".join(lines) + "\n")
    cfg = YarnTrainConfig(synthetic=8 * len(fit_seeds), seed=fit_seeds[0], imaging=imaging, density_drift=drift,
                          workers=1)
    return Path(train_yarn_model(cfg, run)["model"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--sel-seeds", default="5000-5003")
    ap.add_argument("--fit-seeds", default="1000-1007")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    sel, fit = seeds(args.sel_seeds), seeds(args.fit_seeds)
    if fit[0] != 1000 or fit != list(range(fit[0], fit[0] + len(fit))):
        raise SystemExit("--fit-seeds must be a range starting at 1000 (the chunks of canvas train --seed 1000)")
    data = {v: ensure(args.cache, v, sel + fit, args.workers) for v in ("wide", "wider")}
    for v in data:
        data[v].sort(key=lambda r: (r["seed"], int(r["roll"].split("-")[1])))  # stable: cut order kept
    data["mix50"] = mix(data["wide"], data["wider"])
    sensitivity([r for r in data["wide"] if r["seed"] in sel], [r for r in data["wider"] if r["seed"] in sel])

    models: dict[str, dict[str, np.ndarray]] = {"shipped fabric_default": params("fabric_default")}
    with tempfile.TemporaryDirectory() as tmp:
        for v, drift in itertools.product(("wide", "wider", "mix50"), (0.0, 0.01)):
            rows = [r for r in data[v] if r["seed"] in fit and "error" not in r["desc"]]
            folder = fit_run(rows, "wide" if v == "wide" else "wider", drift, fit, Path(tmp) / f"{v}-{drift}")
            models[f"fit on {v}, drift {drift:g}"] = params(folder)
    cols = [(v, d) for v in ("wide", "wider", "mix50") for d in (0.0, 0.01)]
    print("\n== hard-pair ROC-AUC on the selection seeds (columns: selection cuts' imaging / density drift)")
    print(f"  {'model':28s}" + "".join(f"{v + '/' + format(d, 'g'):>12s}" for v, d in cols))
    for name, p in models.items():
        sel_rows = {v: [r for r in data[v] if r["seed"] in sel] for v in data}
        print(f"  {name:28s}" + "".join(f"{evaluate(p, sel_rows[v], d):12.3f}" for v, d in cols), flush=True)


if __name__ == "__main__":
    main()
