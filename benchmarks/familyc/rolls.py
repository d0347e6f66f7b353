"""Family C: X-ray plates of cuts from rolls of plain-weave canvas.

A roll (``make_roll``) holds the statistics of its yarn and loom, separately for warp and weft. A cut
(``render_cut``) draws a new realisation of every random process of its roll (as if cut far away on the roll, so
roll-mates never share threads) and images it independently. Geometry is in cm. The fabric frame has coordinate
``a`` across the warp (the warp threads sit at positions ``a``; the roll's width direction) and ``b`` along the warp.

Run ``python benchmarks/familyc/rolls.py --out DIR --rolls 48 --cuts 4 --seed 0 [--workers 2]``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import tifffile
from scipy import signal
from scipy.ndimage import zoom
from scipy.spatial import cKDTree
from scipy.special import expit

_SALT = 0xFA3C  # keeps these random streams apart from other users of the same integer seeds
_FAMILY, _ROLL, _ROLL_SEED, _CUT, _CUT_SEED = 1, 2, 3, 4, 5
PROFILES = ("elliptical", "lenticular", "flattened", "two_ply")
ALONG_STEP_CM = 0.01  # sampling step of the along-thread thickness modulation


def _rng(*keys: int) -> np.random.Generator:
    """Independent, reproducible stream for a tuple of non-negative integer keys."""
    return np.random.default_rng([_SALT, *(int(k) for k in keys)])


def _noise(
    rng: np.random.Generator, shape: tuple[int, int], s_along: float, s_across: float | None = None, angle: float = 0.0
) -> np.ndarray:
    """White noise low-passed by a (possibly anisotropic) Gaussian; sigmas in pixels, unit standard deviation."""
    s_across = s_along if s_across is None else s_across
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    fa = fx * math.cos(angle) + fy * math.sin(angle)
    fc = -fx * math.sin(angle) + fy * math.cos(angle)
    gain = np.exp(-2 * np.pi**2 * (s_along**2 * fa**2 + s_across**2 * fc**2))
    out = np.fft.irfft2(np.fft.rfft2(rng.standard_normal(shape)) * gain, s=shape)
    out -= out.mean()
    return out / (out.std() + 1e-12)


# ----------------------------------------------------------------------------------------------------------- rolls
def draw_family_densities(rng: np.random.Generator) -> tuple[float, float]:
    """Base (warp, weft) densities of a family in threads/cm: 7-28, warp and weft up to ~40 % apart."""
    warp = float(np.exp(rng.uniform(np.log(7.15), np.log(27.85))))
    weft = float(np.clip(warp * np.exp(rng.uniform(-0.33, 0.33)), 7.15, 27.85))
    return warp, weft


def _draw_material(rng: np.random.Generator) -> dict:
    """The yarn itself: thickness, its variation between and along threads, cross-section, hairiness."""
    slub_lo = rng.uniform(1.0, 5.0)
    return {
        "diameter": rng.uniform(0.45, 1.0),  # yarn width / thread spacing
        "aspect": rng.uniform(0.4, 0.9),  # height / width of the (flattened) yarn
        "lot_sd": 0.3 * rng.beta(1.2, 2.5),  # thread-to-thread thickness variation (log sd)
        "evenness_cv": rng.uniform(0.0, 0.1),  # slow along-thread irregularity
        "evenness_mm": rng.uniform(2.0, 10.0),
        "slub_rate": 2.0 * rng.beta(1.0, 2.0),  # thick places per cm of thread
        "slub_mm": (slub_lo, rng.uniform(slub_lo, 8.0)),
        "slub_gain": rng.uniform(1.2, 2.0),
        "thin_rate": rng.uniform(0.0, 1.0),  # thin places per cm of thread
        "thin_factor": rng.uniform(0.55, 0.9),
        "twist_mm": rng.uniform(1.0, 4.0),
        "twist_amp": rng.uniform(0.0, 0.08),
        "profile": str(rng.choice(PROFILES)),
        "halo_amp": rng.uniform(0.0, 0.3),  # hairiness fringe, relative to the yarn's thickness
        "halo_width": rng.uniform(0.05, 0.3),  # its decay length / spacing
    }


def _draw_loom(rng: np.random.Generator, role: str) -> dict:
    """How the threads are laid: spacing process, reed (or pick) faults, drift, stripes of another yarn lot."""
    fault_p = 0.35 if role == "warp" else 0.15
    return {
        "model": str(rng.choice(["white", "ou", "ar2"])),
        "irregularity": 0.12 * rng.beta(1.2, 2.5),  # sd of the spacing / period
        "corr_threads": float(np.exp(rng.uniform(0.0, np.log(30.0)))),
        "ar2_period": rng.uniform(3.0, 20.0),  # quasi-period of the AR(2) oscillation, threads
        "fault_every": int(rng.integers(8, 41)) if rng.random() < fault_p else 0,
        "fault_delta": float(rng.choice([-1, 1]) * rng.uniform(0.05, 0.3)),
        "drift_amp": rng.uniform(0.0, 0.015),  # relative density drift along the roll
        "drift_scale_cm": rng.uniform(20.0, 120.0),
        "drift_phase": rng.uniform(0, 2 * np.pi),
        "stripe_per_100": rng.uniform(0.3, 2.0) if rng.random() < 0.2 else 0.0,
        "stripe_width": tuple(sorted(rng.integers(5, 61, size=2).tolist())),
        "stripe_thick": rng.uniform(0.7, 1.4),
        "stripe_spacing": rng.uniform(0.93, 1.07),
    }


def make_roll(seed: int, family_densities: tuple[float, float] | None = None) -> dict:
    """Draw a roll's yarn and loom parameters.

    Parameters
    ----------
    seed : int
        Roll seed; everything is reproducible from it.
    family_densities : (float, float), optional
        Base (warp, weft) densities of the roll's family; the roll perturbs each by at most 0.15 threads/cm.
        Drawn from the seed when omitted.

    Returns
    -------
    dict
        ``seed``, ``densities`` (warp, weft threads/cm) and ``yarn`` (all parameters, per ``warp``/``weft``).
    """
    rng = _rng(_ROLL, seed)
    base = family_densities if family_densities is not None else draw_family_densities(rng)
    densities = tuple(float(d + rng.uniform(-0.15, 0.15)) for d in base)
    warp_material = _draw_material(rng)
    same = bool(rng.random() < 0.3)  # the same yarn for warp and weft
    weft_material = dict(warp_material) if same else _draw_material(rng)
    yarn = {
        "warp": {**warp_material, **_draw_loom(rng, "warp")},
        "weft": {**weft_material, **_draw_loom(rng, "weft")},
        "same_yarn": same,
        "crimp": rng.beta(1.5, 2.0),  # how strongly the interlacing shows (0: flat, 1: strong)
        "crimp_balance": rng.uniform(0.2, 0.8),  # share of the crimp taken by the warp
    }
    return {"seed": int(seed), "densities": densities, "yarn": yarn}


# --------------------------------------------------------------------------------------------- thread realisations
def _spacing_deviation(rng: np.random.Generator, n: int, y: dict) -> np.ndarray:
    """Relative deviations of successive thread gaps (sd = the yarn's irregularity).

    The reed (warp) and the take-up regulator (weft) keep threads near their nominal places, so the process is
    stationary in thread *position* (white, Ornstein-Uhlenbeck or quasi-periodic AR(2) displacements) and the gaps
    are its differences: local spacing wanders, but the count over a few cm stays close to nominal.
    """
    burn = 200
    z = rng.standard_normal(n + burn + 1)
    if y["model"] == "ou":
        rho = math.exp(-1.0 / y["corr_threads"])
        u = signal.lfilter([math.sqrt(1 - rho**2)], [1.0, -rho], z)
    elif y["model"] == "ar2":
        r, w = math.exp(-1.0 / y["corr_threads"]), 2 * np.pi / y["ar2_period"]
        a1, a2 = 2 * r * math.cos(w), -(r**2)
        var = (1 - a2) / ((1 + a2) * ((1 - a2) ** 2 - a1**2))
        u, rho = signal.lfilter([1.0], [1.0, -a1, -a2], z) / math.sqrt(var), a1 / (1 - a2)
    else:
        u, rho = z, 0.0
    scale = min(y["irregularity"] / math.sqrt(2 * (1 - rho)), 1.0)  # position sd (periods), at most one period
    return np.clip(scale * np.diff(u[burn:]), -0.45, 0.45)


def _thread_set(rng: np.random.Generator, y: dict, density: float, span: float, roll_pos: float) -> dict:
    """One realisation of the threads of one direction covering [0, span] cm, and of their thickness."""
    period = 1.0 / density
    local = period / (1 + y["drift_amp"] * math.sin(2 * np.pi * roll_pos / y["drift_scale_cm"] + y["drift_phase"]))
    n = int(span * density * 1.6) + 30
    gaps = local * (1 + _spacing_deviation(rng, n, y))
    if y["fault_every"]:  # a damaged dent (or pick fault): one wider or narrower gap every N threads
        gaps[int(rng.integers(y["fault_every"])) :: y["fault_every"]] *= 1 + y["fault_delta"]
    thick = np.exp(y["lot_sd"] * rng.standard_normal(n) - y["lot_sd"] ** 2 / 2)
    if y["stripe_per_100"]:  # bands of threads from another yarn lot
        pos = 0
        while True:
            pos += int(rng.exponential(100 / y["stripe_per_100"]))
            if pos >= n:
                break
            w = int(rng.integers(y["stripe_width"][0], y["stripe_width"][1] + 1))
            gaps[pos : pos + w] *= y["stripe_spacing"]
            thick[pos : pos + w] *= y["stripe_thick"]
            pos += w
    centres = -2 * period - rng.uniform(0, period) + np.cumsum(gaps)
    keep = int(np.searchsorted(centres, span + 2 * period)) + 1
    centres, thick = centres[:keep], thick[:keep]
    # along-thread thickness modulation, sampled every ALONG_STEP_CM
    t = np.arange(int(span / ALONG_STEP_CM) + 2) * ALONG_STEP_CM
    mod = np.ones((keep, t.size))
    if y["evenness_cv"] > 0:
        mod *= 1 + y["evenness_cv"] * _noise(rng, mod.shape, 0.1 / ALONG_STEP_CM * y["evenness_mm"], 1e-3)
    twist = y["twist_mm"] / 10 * rng.uniform(0.95, 1.05, (keep, 1))
    mod *= 1 + y["twist_amp"] * np.sin(2 * np.pi * t / twist + rng.uniform(0, 2 * np.pi, (keep, 1)))
    for rate, lengths, gain in (
        (y["slub_rate"], y["slub_mm"], (1.2, y["slub_gain"])),
        (y["thin_rate"], (2.0, 10.0), (y["thin_factor"], 0.95)),
    ):
        counts = rng.poisson(rate * span, keep)
        for k, c, ln, g in zip(
            np.repeat(np.arange(keep), counts),
            rng.uniform(0, span, counts.sum()),
            rng.uniform(*lengths, counts.sum()) / 10,
            rng.uniform(*gain, counts.sum()),
            strict=True,
        ):
            i0, i1 = max(int((c - ln / 2) / ALONG_STEP_CM), 0), min(int((c + ln / 2) / ALONG_STEP_CM) + 1, t.size)
            bump = 0.5 * (1 - np.cos(2 * np.pi * (t[i0:i1] - c + ln / 2) / ln))  # raised-cosine thick/thin place
            mod[k, i0:i1] *= 1 + (g - 1) * bump
    half = 0.5 * y["diameter"] * period * thick
    return {"centres": centres, "half": half, "mod": np.clip(mod, 0.3, 2.5), "period": period}


def _profile(s: np.ndarray, name: str) -> np.ndarray:
    """Yarn thickness across the thread at |distance| / half-width ``s`` (1 at the centre, 0 beyond the edge)."""
    if name == "lenticular":
        return np.clip(1 - s * s, 0, None)
    if name == "flattened":
        return np.clip(1 - s**4, 0, None) ** 0.25
    if name == "two_ply":
        return np.sqrt(np.clip(1 - ((s - 0.45) / 0.55) ** 2, 0, None))
    return np.sqrt(np.clip(1 - s * s, 0, None))


def _thread_field(across: np.ndarray, along: np.ndarray, ts: dict, y: dict) -> tuple[np.ndarray, ...]:
    """Projected thickness (cm) of one thread direction, the fractional thread coordinate and thread indices."""
    c = ts["centres"]
    k = np.clip(np.searchsorted(c, across), 1, c.size - 1)  # threads k-1 and k bracket each pixel
    ia = np.clip((along / ALONG_STEP_CM).astype(np.intp), 0, ts["mod"].shape[1] - 1)
    thick = np.zeros(across.shape)
    for kk in (k - 1, k):
        m = ts["mod"][kk, ia]
        w = ts["half"][kk] * np.sqrt(m)  # a thick place is mostly thicker, a little wider
        d = np.abs(across - c[kk])
        halo = y["halo_amp"] * np.exp(-np.maximum(d - w, 0) / (y["halo_width"] * ts["period"]))  # hairiness
        t = _profile(d / w, y["profile"]) + halo
        np.maximum(thick, 2 * y["aspect"] * w * np.sqrt(m) * t, out=thick)  # neighbours squeeze rather than stack
    frac = (across - c[k - 1]) / (c[k] - c[k - 1])
    return thick, k - 1 + frac, k - 1 + (frac > 0.5), k


def _realised_density(centres: np.ndarray, lo: float, hi: float) -> float:
    """Threads per cm from the mean spacing of the threads within [lo, hi]."""
    inside = centres[(centres >= lo) & (centres <= hi)]
    return float((inside.size - 1) / (inside[-1] - inside[0]))


# ------------------------------------------------------------------------------------------------------------ cuts
def _canvas_transmission(
    rng: np.random.Generator, roll: dict, geo: dict, loss_fine: np.ndarray, crack_fine: np.ndarray
) -> tuple[np.ndarray, dict]:
    """Beer-Lambert transmission of canvas + ground (+ lining) on the supersampled grid, averaged to pixels."""
    y_w, y_f = roll["yarn"]["warp"], roll["yarn"]["weft"]
    ss, h, w = geo["ss"], geo["shape"][0] * geo["ss"], geo["shape"][1] * geo["ss"]
    step = 1.0 / (geo["ppc"] * ss)
    ys = ((np.arange(h) + 0.5) * step - geo["size"][0] / 2)[:, None]
    xs = ((np.arange(w) + 0.5) * step - geo["size"][1] / 2)[None, :]
    th = math.radians(geo["angle"])
    xr, yr = math.cos(th) * xs + math.sin(th) * ys, -math.sin(th) * xs + math.cos(th) * ys
    a, b = (yr, xr) if geo["rot90"] else (xr, yr)
    a = a + geo["span"] / 2 + _displacement(geo["disp"][0], xs, ys)
    b = b + geo["span"] / 2 + _displacement(geo["disp"][1], xs, ys)
    b_weft = b + math.tan(math.radians(geo["skew"])) * (a - geo["span"] / 2)  # warp and weft not quite square
    warp, weft = geo["warp"], geo["weft"]
    tw, pos_w, near_w, k_w = _thread_field(a, b, warp, y_w)
    tf, pos_f, near_f, k_f = _thread_field(b_weft, a, weft, y_f)
    crimp, bal = roll["yarn"]["crimp"], roll["yarn"]["crimp_balance"]
    tw *= 1 - 0.3 * crimp * np.cos(np.pi * pos_f) ** 2  # both yarns are pressed flatter at crossings
    tf *= 1 - 0.3 * crimp * np.cos(np.pi * pos_w) ** 2
    t_warp = y_w["aspect"] * y_w["diameter"] * warp["period"]
    t_weft = y_f["aspect"] * y_f["diameter"] * weft["period"]
    t_ref = 0.5 * (t_warp + t_weft)
    # Over/under: warp k passes over weft j where k + j is even; centre heights follow the interlacing.
    amp_w, amp_f = crimp * bal * t_ref / 2, crimp * (1 - bal) * t_ref / 2
    z_w = amp_w * (1 - 2 * (near_w & 1)) * np.cos(np.pi * pos_f)
    z_f = -amp_f * (1 - 2 * (near_f & 1)) * np.cos(np.pi * pos_w)
    top = np.maximum(z_w + tw / 2, z_f + tf / 2)
    h_top = max(amp_w + t_warp / 2, amp_f + t_weft / 2)
    cover = np.clip((tw + tf) / (0.3 * t_ref), 0, 1)
    depth = h_top - top + (t_warp + t_weft) * (1 - cover) ** 2  # interstices go through the fabric
    # The ground levels the surface and sinks into the interstices, each filled to its own fraction.
    p = geo["ground"]
    fill = np.full((warp["centres"].size, weft["centres"].size), p["fill"])
    if p["mode"] == "some":
        fill[rng.random(fill.shape) < p["some_frac"]] = p["fill_alt"]
    elif p["mode"] == "patchy":
        fill = np.clip(fill + 0.25 * rng.standard_normal(fill.shape), 0.02, 1)
    ground = p["over"] * t_ref + p["levelling"] * np.minimum(depth, fill[k_w, k_f] * (h_top + t_warp + t_weft))
    ground = np.maximum(ground, 0.15 * p["over"] * t_ref)  # a thin film stays even on protruding slubs
    ground *= (1 - loss_fine) * (1 - p["crack_depth"] * crack_fine)
    od = (p["mu_thread"] * (tw + tf) + p["mu_ground"] * ground) / t_ref
    if geo["lining"] is not None:  # a second, different canvas behind, seen through the first
        ln = geo["lining"]
        th2 = math.radians(ln["angle"])
        la = math.cos(th2) * xs + math.sin(th2) * ys + geo["span"] / 2
        lb = -math.sin(th2) * xs + math.cos(th2) * ys + geo["span"] / 2
        lw, *_ = _thread_field(la, lb, ln["warp"], ln["yarn_w"])
        lf, *_ = _thread_field(lb, la, ln["weft"], ln["yarn_f"])
        od += ln["mu"] * (lw + lf) / (0.5 * (ln["warp"]["period"] + ln["weft"]["period"]))
    t = np.exp(-od).reshape(geo["shape"][0], ss, geo["shape"][1], ss).mean(axis=(1, 3))  # pixel aperture
    return t, {"t_ref_cm": t_ref}


def _displacement(terms: list, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Smooth in-plane distortion of the fabric: a sum of a few long sinusoids (cm)."""
    return sum(amp * np.sin(kx * xs + ky * ys + ph) for amp, kx, ky, ph in terms)


def _draw_displacement(rng: np.random.Generator) -> list:
    """Three sinusoids of 1-6 cm wavelength, each straining the fabric by at most 0.6 %."""
    terms = []
    for _ in range(3):
        strain, lam, ang = rng.uniform(0, 0.006), rng.uniform(1.0, 6.0), rng.uniform(0, 2 * np.pi)
        k = 2 * np.pi / lam
        terms.append((strain / k, k * math.cos(ang), k * math.sin(ang), rng.uniform(0, 2 * np.pi)))
    return terms


def _mean_strain(terms: list, size: tuple[float, float], axis: int) -> float:
    """Mean derivative of a displacement along image x (axis 1) or y (axis 0) over the cut."""
    ys, xs = np.meshgrid(np.linspace(-size[0] / 2, size[0] / 2, 64), np.linspace(-size[1] / 2, size[1] / 2, 64))
    grad = sum((kx if axis == 1 else ky) * amp * np.cos(kx * xs + ky * ys + ph) for amp, kx, ky, ph in terms)
    return float(np.mean(grad))


def _paint_od(rng: np.random.Generator, shape: tuple[int, int], ppc: float) -> tuple[np.ndarray, dict]:
    """Optical depth of the paint: lead content varying smoothly, brushstroke striations, impasto."""
    mean = 0.0 if rng.random() < 0.1 else float(np.exp(rng.uniform(np.log(0.03), np.log(1.0))))
    var = 0.6 * _noise(rng, shape, rng.uniform(0.3, 3.0) * ppc) + 0.4 * _noise(rng, shape, 0.15 * ppc)
    n_dir = int(rng.integers(1, 5))
    weights = np.stack([np.exp(2.5 * _noise(rng, shape, 1.0 * ppc)) for _ in range(n_dir)])
    weights /= weights.sum(axis=0)
    strokes = sum(
        wgt * _noise(rng, shape, rng.uniform(0.3, 1.5) * ppc, rng.uniform(0.01, 0.06) * ppc, rng.uniform(0, np.pi))
        for wgt in weights
    )
    a_var, a_str = rng.uniform(0.05, 0.5), rng.uniform(0.02, 0.2)
    od = mean * np.clip(1 + a_var * var + a_str * strokes, 0, None)
    impasto = rng.random() < 0.25
    if impasto:  # thick lead-white dabs with bristle ridges
        blob = _noise(rng, shape, 1.2 * ppc, 0.4 * ppc, rng.uniform(0, np.pi))
        mask = expit((blob - rng.uniform(0.8, 1.8)) * 6)
        od += rng.uniform(0.3, 1.5) * mask * (1 + 0.3 * strokes)
    return od, {"paint_od": mean, "paint_var": a_var, "strokes": a_str, "stroke_dirs": n_dir, "impasto": impasto}


def _cracks(rng: np.random.Generator, shape: tuple[int, int], ppc: float) -> np.ndarray:
    """Craquelure: borders of a distorted, anisotropic Voronoi tessellation of the paint.

    Candidate seeds (the three nearest) come from a coarse grid; the distance to the border of the nearest cell is
    then computed exactly at every pixel, as the distance to the bisectors with the other candidates.
    """
    cell, stretch = rng.uniform(0.25, 1.2), rng.uniform(1.0, 2.0)
    f = max(int(ppc // 40), 1)  # coarse grid of ~40 px/cm
    hc, wc = -(-shape[0] // f), -(-shape[1] // f)
    wobble = [zoom(_noise(rng, (hc, wc), 0.25 * cell * ppc / f), f, order=1)[: shape[0], : shape[1]] for _ in range(2)]
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]] / ppc
    x = x + 0.15 * cell * wobble[0]  # bend the straight Voronoi borders
    y = (y + 0.15 * cell * wobble[1]) * stretch
    seeds = rng.uniform([x.min(), y.min()], [x.max(), y.max()], (int(x.max() * y.max() / cell**2) + 4, 2))
    _, idx = cKDTree(seeds).query(np.column_stack([x[::f, ::f].ravel(), y[::f, ::f].ravel()]), k=3)
    idx = idx.reshape(hc, wc, 3).repeat(f, 0).repeat(f, 1)[: shape[0], : shape[1]]
    sx, sy = seeds[idx, 0], seeds[idx, 1]
    d2 = (x[..., None] - sx) ** 2 + (y[..., None] - sy) ** 2
    near = np.argmin(d2, axis=-1)[..., None]
    sep = 2 * np.hypot(sx - np.take_along_axis(sx, near, -1), sy - np.take_along_axis(sy, near, -1))
    gap = np.where(sep > 0, (d2 - np.take_along_axis(d2, near, -1)) / np.maximum(sep, 1e-9), np.inf).min(-1)
    width = max(rng.uniform(0.002, 0.01), 0.5 / ppc)
    return np.exp(-((gap / width) ** 2))


def _losses(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Soft masks of paint-and-ground losses: a few irregular blobs."""
    mask = np.zeros(shape)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]] / max(shape)
    for _ in range(int(rng.integers(1, 4))):
        cy, cx, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.02, 0.1)
        rough = _noise(rng, shape, max(shape) * 0.03)
        mask = np.maximum(mask, expit((1 - np.hypot(yy - cy, xx - cx) / r + 0.25 * rough) * 25))
    return mask


def _mounting_od(rng: np.random.Generator, shape: tuple[int, int], ppc: float) -> tuple[np.ndarray, dict]:
    """Stretcher-bar shadow and tacking edge (fold plus nail heads) along a side of the cut."""
    od, info = np.zeros(shape), {"stretcher": False, "tacking_edge": False}
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]] / ppc
    dist = [xx, yy, xx.max() - xx, yy.max() - yy]  # distance to each side, cm
    if rng.random() < 0.12:
        d = dist[int(rng.integers(4))]
        edge, soft = rng.uniform(0.1, 0.6) * d.max(), rng.uniform(0.05, 0.3)
        od += rng.uniform(0.1, 0.6) * expit((edge - d) / soft)  # wood of the bar behind the canvas
        info["stretcher"] = True
    if rng.random() < 0.08:
        side = int(rng.integers(4))
        d = dist[side]
        fold = rng.uniform(0.3, 1.0)
        od += rng.uniform(0.2, 0.8) * expit((fold - d) / 0.03)  # folded-over canvas
        along = yy if side in (0, 2) else xx
        for pos in np.arange(rng.uniform(0, 3), along.max(), rng.uniform(3, 8)):
            r = rng.uniform(0.08, 0.2)
            od += rng.uniform(3, 5) * expit((r - np.hypot(d - fold / 2, along - pos)) * ppc)  # tack heads
        info["tacking_edge"] = True
    return od, info


def _detector(rng: np.random.Generator, t: np.ndarray, f_thread: float) -> tuple[np.ndarray, dict]:
    """Exposure, blur, film or digital response, noise, scanner artefacts, windowing and quantisation."""
    h, w = t.shape
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w) - 0.5
    ang = rng.uniform(0, 2 * np.pi)
    heel, vign = rng.uniform(-0.35, 0.35), rng.uniform(0, 0.4)
    e = t * np.exp(heel * (math.cos(ang) * xx + math.sin(ang) * yy) - vign * (xx**2 + yy**2))
    # PSF: Gaussian core with an optional Lorentzian (Cauchy) tail, applied through its transfer function;
    # the core is kept narrow enough to leave the densest threads (f_thread cycles/px) resolvable.
    sigma = rng.uniform(0.3, max(0.35, min(2.0, 0.19 / f_thread)))  # MTF >= ~0.5 at the threads
    eta, gam = rng.uniform(0, 0.3), rng.uniform(0.5, 3.0)
    pad = int(4 * sigma + 6 * gam) + 4
    ep = np.pad(e, pad, mode="reflect")
    f = np.hypot(np.fft.fftfreq(ep.shape[0])[:, None], np.fft.rfftfreq(ep.shape[1])[None, :])
    otf = (1 - eta) * np.exp(-2 * np.pi**2 * sigma**2 * f**2) + eta * np.exp(-2 * np.pi * gam * f)
    e = np.fft.irfft2(np.fft.rfft2(ep) * otf, s=ep.shape)[pad:-pad, pad:-pad]
    e = np.clip(e / np.median(e), 1e-6, None)
    info = {"blur_sigma_px": sigma, "lorentz_frac": eta, "lorentz_gamma_px": gam, "heel": heel, "vignetting": vign}
    if rng.random() < 0.65:  # film: H&D sigmoid of log exposure, grain in density
        gamma, d_min, d_max = rng.uniform(1.5, 4.0), rng.uniform(0.1, 0.3), rng.uniform(2.8, 4.0)
        s = (d_max - d_min) / (4 * gamma)
        le = np.log10(e)
        mid = np.median(le) + rng.uniform(-0.6, 0.6) * s
        dens = d_min + (d_max - d_min) * expit((le - mid) / s)
        grain = rng.uniform(0.003, 0.02)
        dens += grain * np.sqrt(dens) * _noise(rng, t.shape, rng.uniform(0.4, 1.5))
        density_scan = bool(rng.random() < 0.5)
        y = -dens if density_scan else np.clip(10.0**-dens, 1e-6, None) ** (1 / 2.2)  # lead bright
        info.update(detector="film", film_gamma=gamma, d_min=d_min, d_max=d_max, grain=grain, density_scan=density_scan)
    else:  # digital: linear in photon counts, quantum noise, log-converted or linear display
        photons = float(np.exp(rng.uniform(np.log(2e3), np.log(5e4))))
        counts = e * photons
        counts = np.clip(counts + np.sqrt(counts) * _noise(rng, t.shape, rng.uniform(0.3, 0.8)), 1e-3, None)
        log_display = bool(rng.random() < 0.6)
        y = -np.log(counts) if log_display else -counts
        info.update(detector="digital", photons=photons, log_display=log_display)
    band = rng.uniform(0, 0.12) * y.std()  # scanner banding: row or column offsets
    axis = int(rng.integers(2))
    n = y.shape[axis]
    lines = 0.5 * rng.standard_normal(n) + np.sin(2 * np.pi * np.arange(n) / rng.uniform(5, 60))
    lines += signal.lfilter([0.1], [1, -0.9], rng.standard_normal(n))
    y = y + band * (lines[:, None] if axis == 0 else lines[None, :])
    inverted = bool(rng.random() < 0.25)
    if inverted:
        y = -y
    lo, hi = np.percentile(y, [rng.uniform(0.2, 4.0), rng.uniform(96.0, 99.8)])  # scanner window
    y = np.clip((y - lo) / (hi - lo + 1e-12), 0, 1)
    bits = 8 if rng.random() < 0.4 else 16
    y = np.round(y * (2**bits - 1)) / (2**bits - 1)
    info.update(banding=band, banding_axis="rows" if axis == 0 else "columns", inverted=inverted, bits=bits)
    return y.astype(np.float32), info


def render_cut(
    roll: dict, seed: int, *, size_cm: float | tuple[float, float] | None = None, px_per_cm: float | None = None
) -> tuple[np.ndarray, dict]:
    """Render one cut of a roll as a scanned X-ray plate.

    Parameters
    ----------
    roll : dict
        From ``make_roll``.
    seed : int
        Cut seed; with the roll's seed it fixes the threads, the layers and the imaging.
    size_cm : float or (float, float), optional
        Side, or (height, width), in cm. Drawn square-ish in 3.5-6 cm when omitted.
    px_per_cm : float, optional
        Resolution; drawn in 80-220 px/cm (at least 3.5 px per thread period) when omitted.

    Returns
    -------
    image : np.ndarray
        float32 (H, W) in [0, 1].
    meta : dict
        ``px_per_cm``, ``densities`` (horizontal, vertical threads/cm: threads running left-right and top-bottom,
        as realised in this cut), ``rotated90`` (warp horizontal) and the geometry, layer and imaging parameters.
    """
    rng = _rng(_CUT, roll["seed"], seed)
    if size_cm is None:
        side = rng.uniform(3.5, 6.0)
        size = (float(np.clip(side * rng.uniform(0.85, 1.15), 3.5, 6.0)), side)
    elif np.isscalar(size_cm):
        size = (float(size_cm), float(size_cm))
    else:
        size = (float(size_cm[0]), float(size_cm[1]))
    d_warp, d_weft = roll["densities"]
    lining = None
    if rng.random() < 0.15:
        lining = {"angle": rng.uniform(-8, 8), "densities": tuple(rng.uniform(8, 20, 2)), "mu": rng.uniform(0.05, 0.3)}
    d_max = max(d_warp, d_weft, *(lining["densities"] if lining else ()))
    ppc = float(px_per_cm) if px_per_cm is not None else rng.uniform(min(max(80.0, 3.5 * d_max), 220.0), 220.0)
    shape = (max(round(size[0] * ppc), 8), max(round(size[1] * ppc), 8))
    size = (shape[0] / ppc, shape[1] / ppc)
    span = math.hypot(*size) + 1.0
    roll_pos = (rng.uniform(0, 160), rng.uniform(0, 5000))  # across the width, along the length (cm)
    geo = {
        "ppc": ppc,
        "shape": shape,
        "size": size,
        "span": span,
        "ss": int(np.clip(math.ceil(6.0 / (ppc / d_max)), 1, 4)),  # supersampling: >= 6 samples per period
        "rot90": bool(rng.random() < 0.25),
        "angle": rng.uniform(-3, 3),
        "skew": rng.uniform(-1, 1),
        "disp": (_draw_displacement(rng), _draw_displacement(rng)),
        "warp": _thread_set(rng, roll["yarn"]["warp"], d_warp, span, roll_pos[0]),
        "weft": _thread_set(rng, roll["yarn"]["weft"], d_weft, span, roll_pos[1]),
    }
    if lining is not None:
        yw, yf = {**_draw_material(rng), **_draw_loom(rng, "warp")}, {**_draw_material(rng), **_draw_loom(rng, "weft")}
        lining.update(
            yarn_w=yw,
            yarn_f=yf,
            warp=_thread_set(rng, yw, lining["densities"][0], span, 0.0),
            weft=_thread_set(rng, yf, lining["densities"][1], span, 0.0),
        )
    geo["lining"] = lining
    fill = rng.uniform(0.02, 1.0)
    geo["ground"] = {
        "mode": str(rng.choice(["uniform", "some", "patchy"], p=[0.6, 0.25, 0.15])),
        "fill": fill,
        "fill_alt": rng.uniform(0.0, 0.15) if fill > 0.5 else rng.uniform(0.7, 1.0),
        "some_frac": rng.uniform(0.1, 0.5),
        "over": rng.uniform(0.0, 1.0),
        "levelling": rng.uniform(0.4, 1.0),  # 1: the ground levels the surface; less: it follows the relief
        "mu_ground": float(np.exp(rng.uniform(np.log(0.3), np.log(2.5)))),
        "mu_thread": rng.uniform(0.02, 0.2),
        "crack_depth": rng.uniform(0.2, 0.8),
    }
    crack = _cracks(rng, shape, ppc) if rng.random() < 0.25 else np.zeros(shape)
    loss = _losses(rng, shape) if rng.random() < 0.12 else np.zeros(shape)
    loss_fill = 0.0 if rng.random() < 0.5 else rng.uniform(0.2, 2.0)  # bare canvas or a putty filling
    ss = geo["ss"]
    t, canvas_info = _canvas_transmission(
        rng, roll, geo, np.repeat(np.repeat(loss, ss, 0), ss, 1), np.repeat(np.repeat(crack, ss, 0), ss, 1)
    )
    paint, paint_info = _paint_od(rng, shape, ppc)
    mount, mount_info = _mounting_od(rng, shape, ppc)
    od = paint * (1 - loss) * (1 - geo["ground"]["crack_depth"] * crack) + loss_fill * loss + mount
    image, det_info = _detector(rng, t * np.exp(-od), max(d_warp, d_weft) / ppc)
    # True densities seen in the image: realised thread spacing in the cut, with the fabric's in-plane strain.
    ax_w, ax_f = (0, 1) if geo["rot90"] else (1, 0)
    warp_true = _realised_density(geo["warp"]["centres"], span / 2 - size[ax_w] / 2, span / 2 + size[ax_w] / 2)
    weft_true = _realised_density(geo["weft"]["centres"], span / 2 - size[ax_f] / 2, span / 2 + size[ax_f] / 2)
    warp_true *= 1 + _mean_strain(geo["disp"][0], size, ax_w)
    weft_true *= (1 + _mean_strain(geo["disp"][1], size, ax_f)) * math.hypot(1, math.tan(math.radians(geo["skew"])))
    meta = {
        "px_per_cm": ppc,
        "densities": (weft_true, warp_true) if not geo["rot90"] else (warp_true, weft_true),
        "warp_weft_densities": (warp_true, weft_true),
        "nominal_warp_weft": (d_warp, d_weft),
        "rotated90": geo["rot90"],
        "angle_deg": geo["angle"],
        "skew_deg": geo["skew"],
        "size_cm": size,
        "shape": shape,
        "supersample": ss,
        "roll_position_cm": roll_pos,
        "roll_seed": roll["seed"],
        "cut_seed": int(seed),
        "ground": geo["ground"],
        "cracks": bool(crack.any()),
        "losses": bool(loss.any()),
        "loss_fill_od": loss_fill,
        "lining": None if lining is None else {k: lining[k] for k in ("angle", "densities", "mu")},
        **canvas_info,
        **paint_info,
        **mount_info,
        "imaging": det_info,
    }
    return image, _jsonable(meta)


def _jsonable(x: object) -> object:
    """Plain Python types (tuples, floats, ints) in place of numpy scalars, for JSON and pickling."""
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return tuple(_jsonable(v) for v in x)
    if isinstance(x, np.generic):
        return x.item()
    return x


# ----------------------------------------------------------------------------------------------------- collections
def _plan(n_rolls: int, cuts_per_roll: int, seed: int, rolls_per_family: int) -> list[tuple]:
    """(roll, cut seed, roll name, family name, plate name) for every cut of a collection."""
    families: dict[int, tuple[float, float]] = {}
    jobs = []
    for k in range(n_rolls):
        f = k // rolls_per_family
        if f not in families:
            families[f] = draw_family_densities(_rng(_FAMILY, seed, f))
        roll = make_roll(int(_rng(_ROLL_SEED, seed, k).integers(2**31)), families[f])
        for c in range(cuts_per_roll):
            cut_seed = int(_rng(_CUT_SEED, seed, k, c).integers(2**31))
            jobs.append((roll, cut_seed, f"c-{seed}-{k}", f"c-{seed}-{f}", f"c-{seed}-{k}_{c}.tif"))
    return jobs


def make_collection(
    n_rolls: int, cuts_per_roll: int = 4, *, seed: int = 0, rolls_per_family: int = 4, size_cm: float | None = None
) -> list[dict]:
    """Render ``cuts_per_roll`` cuts of each of ``n_rolls`` rolls, ``rolls_per_family`` rolls to a density family.

    Returns
    -------
    list of dict
        ``image``, ``px_per_cm``, ``roll`` ("c-<seed>-<k>"), ``family`` ("c-<seed>-<f>"), ``densities``
        (horizontal, vertical threads/cm) and ``meta``.
    """
    out = []
    for roll, cut_seed, roll_name, family, _ in _plan(n_rolls, cuts_per_roll, seed, rolls_per_family):
        image, meta = render_cut(roll, cut_seed, size_cm=size_cm)
        out.append(
            {
                "image": image,
                "px_per_cm": meta["px_per_cm"],
                "roll": roll_name,
                "family": family,
                "densities": meta["densities"],
                "meta": meta,
            }
        )
    return out


def _write_one(job: tuple, out_dir: Path, size_cm: float | None = None) -> dict:
    roll, cut_seed, roll_name, family, plate = job
    image, meta = render_cut(roll, cut_seed, size_cm=size_cm)
    tifffile.imwrite(out_dir / plate, np.round(image * 65535).astype(np.uint16), compression="zlib")
    return {"plate": plate, "roll": roll_name, "px_per_cm": meta["px_per_cm"], "family": family, "meta": meta}


def write_collection(
    out_dir: str | Path,
    n_rolls: int,
    cuts_per_roll: int = 4,
    *,
    seed: int = 0,
    rolls_per_family: int = 4,
    workers: int = 1,
    size_cm: float | None = None,
) -> Path:
    """Write a collection as 16-bit TIFFs with ``plates.csv`` and ``plates_meta.jsonl``.

    Parameters
    ----------
    out_dir : str or Path
        Output folder (created).
    n_rolls, cuts_per_roll, seed, rolls_per_family, size_cm
        As for ``make_collection``; the images are identical to it.
    workers : int
        Processes rendering in parallel (the output does not depend on it).

    Returns
    -------
    Path
        ``plates.csv`` with header ``plate,roll,px_per_cm,family`` (plate: file name relative to the CSV's folder).
        ``plates_meta.jsonl`` beside it holds every cut's metadata, one JSON object per line.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = _plan(n_rolls, cuts_per_roll, seed, rolls_per_family)
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            rows = list(pool.map(_write_one, jobs, [out_dir] * len(jobs), [size_cm] * len(jobs)))
    else:
        rows = [_write_one(job, out_dir, size_cm) for job in jobs]
    csv_path = out_dir / "plates.csv"
    with open(csv_path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["plate", "roll", "px_per_cm", "family"])
        writer.writerows([r["plate"], r["roll"], f"{r['px_per_cm']:.6f}", r["family"]] for r in rows)
    with open(out_dir / "plates_meta.jsonl", "w") as fh:
        for r in rows:
            fh.write(json.dumps({"plate": r["plate"], **r["meta"]}) + "\n")
    return csv_path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Family C: X-ray plates of cuts from rolls of plain-weave canvas.")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--rolls", type=int, default=48)
    parser.add_argument("--cuts", type=int, default=4, help="cuts per roll")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rolls-per-family", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--size-cm", type=float, default=None, help="square cuts of this side (default: 3.5-6 cm)")
    args = parser.parse_args(argv)
    path = write_collection(
        args.out,
        args.rolls,
        args.cuts,
        seed=args.seed,
        rolls_per_family=args.rolls_per_family,
        workers=args.workers,
        size_cm=args.size_cm,
    )
    print(path)


if __name__ == "__main__":
    main()
