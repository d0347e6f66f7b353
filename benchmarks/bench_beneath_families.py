"""Hidden-layer maps in family and out of family, through the CLI a user types.

Every scene is written as a pair of files (8-bit RGB PNG, 16-bit IR PNG) and compared by the real
``artlens beneath compare`` entry point (in-process, so the numbers are those of the maps the command
writes), with its defaults except ``--method``:

    artlens beneath compare VISIBLE IR --out DIR --no-catalog --no-report --json [--method M]

(``--no-catalog`` keeps the benchmark out of the user's catalog, ``--no-report`` skips the HTML; neither
changes a map). Methods: the default (``pixel``), ``residual``, ``gat``, ``gcn``; and two training-free
baselines of ``benchmarks/familyb/scenes.py`` (``baseline_maps``: a plain least-squares RGB → IR
residual and "the IR is dark", computed on the files as written, without registration).

Two families of scenes:

- **A** — ``artlens.synth.hidden.make_hidden_scene`` (the generator the graph models were trained on),
  256 px, kinds ``underdrawing`` / ``composition`` / ``mixed``, decoys on top, the default pigment set
  (measured Wiersma tables when ``../shared/data`` has them).
- **B** — ``benchmarks/familyb/scenes.py``, written independently from the physics (other pigment
  spectra, layers, cameras, InGaAs or silicon IR, misregistration, craquelure, glazes, decoys), 384 px,
  kinds ``lines`` / ``shapes`` / ``mixed``. Nothing shipped is trained or selected on it; seeds
  ≥ 200 000 are the unseen draw (seeds < 10 000 were used while the pixel method was developed).

Measure: pixel average precision (``sklearn.metrics.average_precision_score``) of each map against the
scene's hidden-content mask, per image, averaged per kind and over all scenes. For family B, a reference
that is not a method: the AP of the simulator's own noise-free IR darkening (``layers["ir_drop"]``, in
the visible frame) used as the map, a rough ceiling for any map made from the IR image. Beside it, for each
method's run, how many cells the automatic cross-check flagged (``summary.json``'s ``disagreement``)
and what fraction of the flagged cells hold hidden content.

``--diagnose`` adds, for family B, where the ``pixel`` map's top pixels fall (as many as the mask holds: in
the mask, on hidden content the mask rule leaves out, beside the mask, on craquelure, on black strokes on top,
elsewhere) and the map's AP when the IR image is put in the visible frame with the simulator's own
misregistration undone exactly (how much of the gap registration explains).

    python benchmarks/bench_beneath_families.py [--n 8] [--seed0 200000] [--seed0-a 90000]
        [--methods pixel,residual,gat,gcn] [--families A,B] [--json OUT] [--diagnose]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
PIGMENTS = SHARED / "multispectral" / "pigment_spectra_wiersma" / "oilpaint"  # measured tables, when present
KINDS = {"A": ("underdrawing", "composition", "mixed"), "B": ("lines", "shapes", "mixed")}
METHODS = ("pixel", "residual", "gat", "gcn")
BASELINES = ("lstsq_residual", "dark")


def scenes_a(n: int, seed0: int, size: int = 256) -> list[tuple[str, int, Any]]:
    """``(kind, seed, scene)`` of family A; ``scene`` has ``visible_rgb`` (uint8), ``ir`` (uint16), ``mask``."""
    from artlens.synth.hidden import load_pigments, make_hidden_scene

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pigments = load_pigments(PIGMENTS if PIGMENTS.is_dir() else None)  # None: built-in set
        return [(kind, seed0 + i, make_hidden_scene((size, size), kind=kind, decoys=True, seed=seed0 + i,
                                                    pigments=pigments))
                for kind in KINDS["A"] for i in range(n)]


def scenes_b(n: int, seed0: int, size: int = 384) -> list[tuple[str, int, Any]]:
    from familyb.scenes import make_scene

    return [(kind, seed0 + i, make_scene(seed0 + i, kind=kind, size=size)) for kind in KINDS["B"] for i in range(n)]


def write_files(directory: Path, family: str, scene: Any) -> tuple[Path, Path, Any]:
    """Write the pair; return ``(visible, ir, scene as familyb.scenes.baseline_maps expects it)``."""
    if family == "B":
        from familyb.scenes import write_pair

        paths = write_pair(directory, scene)
        return paths["visible"], paths["ir"], scene
    directory.mkdir(parents=True, exist_ok=True)
    vis, ir = directory / "scene_visible.png", directory / "scene_ir.png"
    Image.fromarray(scene.visible_rgb).save(vis)
    Image.fromarray(scene.ir).save(ir)
    as_b = SimpleNamespace(visible_rgb=scene.visible_rgb.astype(np.float32) / 255.0,
                           ir=scene.ir.astype(np.float32) / 65535.0)
    return vis, ir, as_b


def run_cli(*args: str) -> dict[str, Any]:
    """``artlens ARGS --json`` in-process; the printed summary (raises on a non-zero exit)."""
    from artlens.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            main([*args, "--json"])
    except SystemExit as exc:
        if exc.code:
            raise RuntimeError(f"artlens {' '.join(args)} exited {exc.code}: {err.getvalue().strip()}") from None
    return json.loads(out.getvalue().strip().splitlines()[-1])


def flagged_hits(summary: dict[str, Any], mask: np.ndarray) -> tuple[int, int]:
    """(flagged cells listed, of which hold hidden content)."""
    cells = summary["disagreement"]["cells"]
    return len(cells), sum(bool(mask[c["y0"]:c["y1"], c["x0"]:c["x1"]].any()) for c in cells)


def exact_registration_ap(scene: Any) -> float:
    """AP of the ``pixel`` map when the IR image is put in the visible frame with the simulator's own
    misregistration (``meta["registration"]``) undone exactly, instead of by the command's registration: how much
    of the gap is registration."""
    from familyb.scenes import pixel_ap
    from scipy import ndimage

    from artlens.beneath.graphs import normalise_other
    from artlens.beneath.pixel import PixelParams, pixel_evidence

    r = scene.meta["registration"]  # IR pixel x_ir sees visible-frame point s R (x_ir - c) + c + shift, (x, y)
    ir = scene.ir.astype(np.float32)
    h, w = ir.shape
    th, s = np.deg2rad(r["rotation_deg"]), r["scale"]
    rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    c = np.array([[(w - 1) / 2], [(h - 1) / 2]])
    src = np.linalg.inv(rot) @ ((np.stack([xx.ravel(), yy.ravel()]) - c - np.array(r["shift_px"])[:, None]) / s) + c
    warped = ndimage.map_coordinates(ir, [src[1].reshape(h, w), src[0].reshape(h, w)], order=3, mode="nearest")
    vis = np.asarray(scene.visible_rgb)
    heat, _ = pixel_evidence(vis, normalise_other(warped, polarity="dark"), params=PixelParams(max_shift_px=0))
    return pixel_ap(np.asarray(scene.mask, bool), heat)


def top_k_breakdown(scene: Any, heat: np.ndarray) -> dict[str, float]:
    """Where the map's ``k`` highest pixels fall (``k`` = mask size): in the mask; on hidden content that the mask
    rule leaves out (coverage 0.05-0.5, not revealed, or shown in the visible); within 2 px of the mask; on
    craquelure; on a black stroke painted on top; elsewhere."""
    from scipy import ndimage

    mask, lay = np.asarray(scene.mask, bool), scene.layers
    k = int(mask.sum())
    top = np.zeros(mask.size, bool)
    top[np.argsort(-heat.ravel(), kind="stable")[:k]] = True
    top = top.reshape(mask.shape)
    rest = top & ~mask
    cats = {"mask": top & mask}
    for name, where in (("hidden_outside_mask", (lay["underdrawing"] >= 0.05) | (lay["pentimento"] >= 0.05)),
                        ("beside_mask", ndimage.binary_dilation(mask, iterations=2)),
                        ("craquelure", lay["craquelure"] >= 0.05),
                        ("top_stroke", ndimage.binary_dilation(lay["top_strokes"] > 0.02, iterations=2))):
        cats[name] = rest & where
        rest = rest & ~where
    cats["elsewhere"] = rest
    return {n: float(v.sum() / max(k, 1)) for n, v in cats.items()}


def measure(family: str, scenes: list[tuple[str, int, Any]], methods: list[str], work: Path,
            diagnose: bool = False) -> dict[str, Any]:
    from familyb.scenes import baseline_maps, pixel_ap

    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for kind, seed, scene in scenes:
        d = work / f"{family}_{kind}_{seed}"
        vis, ir, as_b = write_files(d, family, scene)
        mask = np.asarray(scene.mask, bool)
        row: dict[str, Any] = {"family": family, "kind": kind, "seed": seed, "mask_fraction": float(mask.mean()),
                               "ap": {}, "flagged": {}, "seconds": {}}
        for method in methods:
            t = time.perf_counter()
            args = ["beneath", "compare", str(vis), str(ir), "--out", str(d / method), "--no-catalog", "--no-report"]
            s = run_cli(*args, *(["--method", method] if method != "pixel" else []))  # pixel: the default
            row["seconds"][method] = round(time.perf_counter() - t, 2)
            row["ap"][method] = pixel_ap(mask, np.load(s["heatmap"]))
            n, hits = flagged_hits(s, mask)
            row["flagged"][method] = {"cells": s["disagreement"]["n_flagged"], "listed": n, "with_hidden": hits,
                                      "against": s["disagreement"]["methods"][1]}
            if method == "pixel":
                row["default_method"] = s["method"]
        for name, heat in baseline_maps(as_b).items():
            row["ap"][name] = pixel_ap(mask, heat)
        if family == "B":  # a reference, not a method: the simulator's own noise-free IR darkening
            row["reference_ap_ir_drop"] = pixel_ap(mask, scene.layers["ir_drop"])
            if diagnose and "pixel" in methods:
                row["pixel_ap_exact_registration"] = exact_registration_ap(scene)
                row["pixel_top_k"] = top_k_breakdown(scene, np.load(d / "pixel" / "pixel.npy"))
        rows.append(row)
        print(f"{family} {kind:12s} {seed}: " + ", ".join(f"{k} {v:.3f}" for k, v in row["ap"].items()),
              flush=True)
    names = [*methods, *BASELINES]
    table: dict[str, Any] = {}
    for name in names:
        per_kind = {k: float(np.nanmean([r["ap"][name] for r in rows if r["kind"] == k])) for k in KINDS[family]}
        table[name] = {"mean_ap": float(np.nanmean([r["ap"][name] for r in rows])), "by_kind": per_kind}
    flags = {m: {"cells": int(sum(r["flagged"][m]["cells"] for r in rows)),
                 "listed": int(sum(r["flagged"][m]["listed"] for r in rows)),
                 "with_hidden": int(sum(r["flagged"][m]["with_hidden"] for r in rows)),
                 "against": rows[0]["flagged"][m]["against"]} for m in methods} if rows else {}
    reference = None
    if family == "B" and rows:
        reference = {"mean_ap": float(np.nanmean([r["reference_ap_ir_drop"] for r in rows])),
                     "by_kind": {k: float(np.nanmean([r["reference_ap_ir_drop"] for r in rows if r["kind"] == k]))
                                 for k in KINDS[family]}}
    diagnosis = None
    if rows and "pixel_top_k" in rows[0]:
        diagnosis = {k: {"pixel_ap": table["pixel"]["by_kind"][k],
                         "pixel_ap_exact_registration": float(np.mean([r["pixel_ap_exact_registration"]
                                                                       for r in rows if r["kind"] == k])),
                         "top_k": {c: float(np.mean([r["pixel_top_k"][c] for r in rows if r["kind"] == k]))
                                   for c in rows[0]["pixel_top_k"]}} for k in KINDS[family]}
    return {"family": family, "n_scenes": len(rows), "seconds": round(time.perf_counter() - t0, 1),
            "methods": table, "reference_ir_drop": reference, "flagged": flags, "diagnosis": diagnosis,
            "scenes": rows}


def print_table(results: dict[str, dict[str, Any]]) -> None:
    fams = [f for f in ("A", "B") if f in results]
    names = list(next(iter(results.values()))["methods"])
    head = " | ".join(f"{f} {k}" for f in fams for k in (*KINDS[f], "mean"))
    print(f"\n| map | {head} |\n|---|" + "---:|" * sum(len(KINDS[f]) + 1 for f in fams))
    for name in names:
        cells = []
        for f in fams:
            m = results[f]["methods"][name]
            cells += [f"{m['by_kind'][k]:.3f}" for k in KINDS[f]] + [f"**{m['mean_ap']:.3f}**"]
        label = f"{name} (default)" if name == "pixel" else name
        print(f"| {label} | " + " | ".join(cells) + " |")
    if "B" in results and results["B"]["reference_ir_drop"]:
        r = results["B"]["reference_ir_drop"]
        print("reference (not a method), family B, the simulator's noise-free IR darkening as the map: "
              + ", ".join(f"{k} {v:.3f}" for k, v in r["by_kind"].items()) + f", mean {r['mean_ap']:.3f}")
    diag = results.get("B", {}).get("diagnosis")
    for kind, v in (diag or {}).items():
        print(f"diagnosis, family B {kind}: pixel AP {v['pixel_ap']:.3f}, with the simulator's registration undone "
              f"exactly {v['pixel_ap_exact_registration']:.3f}; the map's top-k pixels: "
              + ", ".join(f"{c} {x:.2f}" for c, x in v["top_k"].items()))
    for f in fams:
        for m, v in results[f]["flagged"].items():
            print(f"family {f}, {m} vs {v['against']}: {v['cells']} cells flagged; of {v['listed']} listed, "
                  f"{v['with_hidden']} hold hidden content")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=8, help="scenes per kind and family")
    ap.add_argument("--seed0", type=int, default=200_000, help="first family-B seed (>= 200000: the unseen draw)")
    ap.add_argument("--seed0-a", type=int, default=90_000, help="first family-A seed (held out of training)")
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated --method values")
    ap.add_argument("--families", default="A,B")
    ap.add_argument("--work", type=Path, default=None, help="folder for the pairs and outputs (default: temporary)")
    ap.add_argument("--json", type=Path, default=None, help="write every number to this file")
    ap.add_argument("--diagnose", action="store_true",
                    help="family B: where the pixel map's top pixels fall, and its AP with exact registration")
    args = ap.parse_args()
    methods = [m for m in args.methods.split(",") if m]
    unknown = set(methods) - set(METHODS)
    if unknown:
        ap.error(f"unknown methods {sorted(unknown)}; expected some of {', '.join(METHODS)}")
    import torch

    torch.set_num_threads(2)
    from artlens import __version__

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        for fam in args.families.split(","):
            scenes = scenes_a(args.n, args.seed0_a) if fam == "A" else scenes_b(args.n, args.seed0)
            results[fam] = measure(fam, scenes, methods, work, diagnose=args.diagnose)
    print_table(results)
    if args.json:
        meta = {"artlens_version": __version__, "n_per_kind": args.n, "seed0_b": args.seed0, "seed0_a": args.seed0_a,
                "methods": methods, "command": " ".join(sys.argv)}
        args.json.write_text(json.dumps({"meta": meta, **results}, indent=1) + "\n")
        print(f"\nresults: {args.json}")


if __name__ == "__main__":
    main()
