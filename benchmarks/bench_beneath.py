"""Benchmark of ``artlens beneath``: localisation of hidden content, speed, and a real-painting figure.

1. **Localisation** on held-out synthetic scenes (:func:`artlens.synth.hidden.make_hidden_scene`,
   256 x 256 px, thin underdrawings, filled earlier shapes and both, with decoys painted on top; seeds
   never used in training): pixel average precision (``sklearn.metrics.average_precision_score``) of
   each heatmap against the hidden-content mask (decoys excluded from the mask), pooled over all
   pixels of a set and averaged per image. Two sets: the *measured* Wiersma pigments (when
   ``../shared/data`` is present; the models never saw them) and the *built-in* pigments. Methods:
   ``dark`` (1 - IR), two training-free residuals (robust RGB→IR regressions: one Huber-fitted
   quadratic of R, G, B; the median IR of each of 32 colour clusters, the default), GCN and GAT
   embedding distance, GAT attention; the GAT distance also with visible-only and other-only
   superpixels, and the best score any per-region map could reach on each segmentation (each
   region painted with its true hidden fraction).
2. **Time** for one 2 000 x 2 000 px pair (a 1 000 px synthetic scene upsampled twice, with noise,
   its IR rotated by 0.3°, scaled by 1/1.01 and shifted by (6, -4) px, so that registration has work
   to do; residuals up to 3 px accepted): registration, graph building,
   inference of each model, the residual baseline; on the threads torch and numpy are given
   (``--threads``, default 2).
3. **Figure** on the CAVE oil painting (RGB vs its 700 nm band), written to a path the script prints.

Usage::

    nice -n 10 python benchmarks/bench_beneath.py --out /tmp/bench-beneath
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
KINDS = ("underdrawing", "composition", "mixed")


def scenes(pigments, n_per_kind: int, size: int, seed0: int = 90_000):  # noqa: ANN001, ANN201
    from artlens.synth.hidden import make_hidden_scene

    for kind in KINDS:
        for k in range(n_per_kind):
            yield kind, make_hidden_scene((size, size), kind=kind, decoys=True, seed=seed0 + k, pigments=pigments)


def ap(masks: list[np.ndarray], maps: list[np.ndarray]) -> tuple[float, float]:
    """(pooled pixel AP, mean per-image AP)."""
    from sklearn.metrics import average_precision_score

    pooled = average_precision_score(np.concatenate([m.ravel() for m in masks]),
                                     np.concatenate([h.ravel() for h in maps]))
    per = [average_precision_score(m.ravel(), h.ravel()) for m, h in zip(masks, maps, strict=True)]
    return float(pooled), float(np.mean(per))


def localisation(pigments, n_per_kind: int, size: int, models: dict) -> dict:  # noqa: ANN001
    from artlens.beneath.graphs import build_graphs, normalise_other
    from artlens.beneath.heatmaps import dark_map, model_heatmaps, residual_map

    gat, gat_cfg = models["gat"]
    rpx = gat_cfg["graphs"]["region_px"]
    maps: dict[str, list[np.ndarray]] = {}
    masks: list[np.ndarray] = []
    kinds: list[str] = []
    for kind, s in scenes(pigments, n_per_kind, size):
        masks.append(s.mask)
        kinds.append(kind)
        oth = normalise_other(s.ir)
        maps.setdefault("dark (1 − IR)", []).append(dark_map(oth))
        maps.setdefault("residual, one quadratic of RGB (Huber)", []).append(
            residual_map(s.visible_rgb, oth, model="polynomial", degree=2))
        maps.setdefault("residual, median per colour cluster (default)", []).append(residual_map(s.visible_rgb, oth))
        for seg in ("stacked", "visible", "other"):
            g = build_graphs(s.visible_rgb, oth, segmentation=seg, region_px=rpx, other_is_normalised=True)
            maps.setdefault(f"region ceiling, {seg} superpixels", []).append(g.paint(g.region_fraction(s.mask)))
            out = model_heatmaps(gat, g)
            maps.setdefault(f"GAT embedding distance, {seg} superpixels", []).append(
                g.paint(out["embedding_distance"]))
            if seg == "stacked":
                maps.setdefault("GAT attention (withdrawn in the IR graph)", []).append(g.paint(out["attention"]))
                gcn_out = model_heatmaps(models["gcn"][0], g)
                maps.setdefault("GCN embedding distance, stacked superpixels", []).append(
                    g.paint(gcn_out["embedding_distance"]))
    result = {"n_scenes": len(masks), "hidden_fraction": float(np.mean([m.mean() for m in masks])), "methods": {}}
    for name, ms in maps.items():
        pooled, mean = ap(masks, ms)
        by_kind = {k: ap([m for m, kk in zip(masks, kinds, strict=True) if kk == k],
                         [h for h, kk in zip(ms, kinds, strict=True) if kk == k])[0] for k in KINDS}
        result["methods"][name] = {"pooled_ap": pooled, "mean_ap": mean, "pooled_ap_by_kind": by_kind}
    return result


def timing(size: int, models: dict, seed: int = 7) -> dict:
    from scipy import ndimage
    from skimage.transform import resize

    from artlens.beneath.graphs import build_graphs, normalise_other
    from artlens.beneath.heatmaps import model_heatmaps, residual_map
    from artlens.beneath.registration import register
    from artlens.synth.hidden import builtin_pigments, make_hidden_scene

    s = make_hidden_scene((size // 2, size // 2), kind="mixed", seed=seed, pigments=builtin_pigments(),
                          wavelength_step_nm=20.0)
    rng = np.random.default_rng(seed)
    rgb = resize(s.visible_rgb / 255.0, (size, size, 3), order=1) + 0.01 * rng.standard_normal((size, size, 3))
    rgb = np.clip(rgb, 0, 1).astype(np.float32)
    ir = resize(s.ir / 65535.0, (size, size), order=1) + 0.01 * rng.standard_normal((size, size))
    c, a = (size - 1) / 2, np.deg2rad(0.3)
    m = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) / 1.01
    ir = ndimage.affine_transform(ir, m, offset=np.array([c, c]) - m @ np.array([c, c]) + [6.0, -4.0], order=1,
                                  mode="reflect").astype(np.float32)
    out: dict = {"size": [size, size]}
    luma = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = register(luma, ir, max_residual_px=3.0)
    out["registration_s"] = time.perf_counter() - t
    out["registration"] = {k: reg.to_dict()[k] for k in ("method_used", "residual_px", "scale", "rotation_deg")}
    oth = normalise_other(reg.warped, valid=reg.valid)
    t = time.perf_counter()
    g = build_graphs(rgb, oth, region_px=models["gat"][1]["graphs"]["region_px"], valid=reg.valid,
                     other_is_normalised=True)
    out["graphs_s"] = time.perf_counter() - t
    out["regions"], out["edges"] = g.num_nodes, int(g.visible.edge_index.shape[1])
    for name, (net, _) in models.items():
        t = time.perf_counter()
        model_heatmaps(net, g)
        out[f"inference_{name}_s"] = time.perf_counter() - t
    t = time.perf_counter()
    residual_map(rgb, oth, valid=reg.valid)
    out["residual_s"] = time.perf_counter() - t
    return out


def cave_figure(out_dir: Path) -> dict | None:
    folder = SHARED / "multispectral" / "cave_oil_painting"
    rgb_file, band_file = folder / "oil_painting_RGB.bmp", folder / "oil_painting_ms_31.png"
    if not (rgb_file.is_file() and band_file.is_file()):
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image

    from artlens.beneath.compare import compare_views
    from artlens.report.overlays import HEATMAP_CMAP

    run = out_dir / "cave_oil_painting"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = compare_views(rgb_file, band_file, run, method="gat", other_modality="band", use_catalog=False)
    rgb = np.asarray(Image.open(rgb_file).convert("RGB"))
    band = np.asarray(Image.open(run / "other_registered.png"))
    fig = Figure(figsize=(16, 4.4))
    FigureCanvasAgg(fig)
    panels = [("visible (CAVE RGB)", rgb, None), ("700 nm band (normalised)", band, "gray")]
    for name in ("embedding_distance", "attention", "residual"):
        panels.append((name, np.load(s["heatmaps"][name]["npy"]), HEATMAP_CMAP))
    for i, (title, img, cmap) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        if cmap in (None, "gray"):
            ax.imshow(img, cmap=cmap)
        else:
            ax.imshow(rgb)
            lo, hi = np.percentile(img, [1, 99])
            im = ax.imshow(img, cmap=cmap, alpha=0.6, vmin=lo, vmax=hi)
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02).ax.tick_params(labelsize=7)
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
    fig.tight_layout()
    path = out_dir / "cave_oil_painting_beneath.png"
    fig.savefig(path, dpi=110)
    return {"figure": str(path), "report": s["files"].get("report_html"),
            "registration": s["registration"]["method_used"], "timings_s": s["timings_s"]}


def main() -> None:
    ap_ = argparse.ArgumentParser(description="beneath benchmark")
    ap_.add_argument("--out", type=Path, default=Path("/tmp/bench-beneath"))
    ap_.add_argument("--per-kind", type=int, default=6, help="scenes per kind and pigment set")
    ap_.add_argument("--size", type=int, default=256)
    ap_.add_argument("--time-size", type=int, default=2000)
    ap_.add_argument("--threads", type=int, default=2)
    ap_.add_argument("--skip-timing", action="store_true")
    args = ap_.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    from artlens.beneath.compare import load_beneath_model
    from artlens.synth.hidden import builtin_pigments, load_pigments

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    args.out.mkdir(parents=True, exist_ok=True)
    models = {"gat": load_beneath_model(None, "gat"), "gcn": load_beneath_model(None, "gcn")}
    results: dict = {"models": {k: {"name": c["model"], "sha256": c["sha256"]} for k, (_, c) in models.items()}}
    sets = {"built-in pigments": builtin_pigments()}
    wiersma = SHARED / "multispectral" / "pigment_spectra_wiersma" / "oilpaint"
    if wiersma.is_dir():
        sets = {"measured pigments (Wiersma)": load_pigments(wiersma), **sets}
    for name, ps in sets.items():
        t = time.perf_counter()
        results[name] = localisation(ps, args.per_kind, args.size, models)
        r = results[name]
        print(f"\n## {name}: {r['n_scenes']} held-out scenes of {args.size} px, hidden content "
              f"{100 * r['hidden_fraction']:.1f} % of pixels ({time.perf_counter() - t:.0f} s)\n")
        print("| heatmap | pixel AP (pooled) | mean AP per image | underdrawing | composition | mixed |")
        print("|---|---:|---:|---:|---:|---:|")
        for m, v in r["methods"].items():
            k = v["pooled_ap_by_kind"]
            print(f"| {m} | {v['pooled_ap']:.3f} | {v['mean_ap']:.3f} | {k['underdrawing']:.3f} | "
                  f"{k['composition']:.3f} | {k['mixed']:.3f} |")
    if not args.skip_timing:
        t = timing(args.time_size, models)
        results["timing"] = t
        print(f"\n## Time for one {args.time_size} x {args.time_size} px pair ({args.threads} threads)\n")
        print("| step | seconds |\n|---|---:|")
        for k in ("registration_s", "graphs_s", "inference_gat_s", "inference_gcn_s", "residual_s"):
            print(f"| {k[:-2].replace('_', ' ')} | {t[k]:.2f} |")
        print(f"\nregions {t['regions']}, edges {t['edges']}; registration {t['registration']}")
    cave = cave_figure(args.out)
    results["cave"] = cave
    if cave:
        print(f"\nCAVE oil painting (RGB vs 700 nm): figure {cave['figure']}\nreport {cave['report']}")
    else:
        print("\nCAVE oil painting not found under ../shared/data; no figure")
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nresults: {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
