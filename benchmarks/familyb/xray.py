"""Family B X-ray plate simulator (measuring only; never train or select anything that ships on it).

Physics, in order of the light path
-----------------------------------
1. **Weave geometry.** Two thread systems ("horizontal" and "vertical") of a plain weave. Each system has
   per-thread centrelines whose spacing follows an AR(1) random walk around the mean period, a smooth
   displacement field (waviness, wave vectors mostly along the thread, so threads bend rather than bunch),
   per-thread width fraction and thickness (with optional stripes of thicker threads) and, along every thread,
   a smooth width/thickness modulation plus Gaussian slubs.
2. **Crimp.** Plain weave over/under: the centre height of horizontal thread k is
   ``A_h (-1)^k c(pi n_v)`` and of vertical thread m ``-A_v (-1)^m c(pi n_h)``, where ``n_h``, ``n_v`` are the
   continuous thread indices and ``c(phi) = sign(cos phi) |cos phi|^gamma``; at crossing (k, m) the horizontal
   thread is on top when k + m is even.
3. **Cross-section.** Thread thickness across the thread: elliptical, lenticular (parabolic), rounded
   (superellipse, flat top) or two-ply (two lobes with a central groove whose depth varies with the twist).
4. **Ground.** Lead-white ground whose top is level (plus a partial levelling term that follows the smoothed
   canvas relief); its thickness = ground top - canvas top surface, so it fills the hollows between threads.
   In the interstices it penetrates to a fraction ``penetration`` of the canvas depth.
5. **Interstice lattices.** ``interstice="bright"``: ground beads pushed through every interstice (extra lead
   path, a bright dot per interstice). ``"dark"``: the ground bridged over every open interstice (95 % of the
   ground and the canvas missing there, paint half missing: pinholes), a flat-bottomed dark dot.
6. **Lining canvas** (optional): a second weave behind, seen through its adhesive, scaled to
   ``lining_strength`` of the main weave's attenuation modulation.
7. **Paint.** A lead-white base layer, impasto lumps and curved brush strokes (circular-arc bands with
   bristle ridges and tapered ends), most lead white (mu 10/mm), some low-mu pigments (1.2/mm).
8. **Defects.** Craquelure (warped anisotropic Voronoi network from the two nearest seeds, with dropped edges),
   a tear (random-walk path, irregular width, threads and layers missing), stretcher-bar shadows (wood behind:
   bright; or worn layers over the bar with a bar-edge crack: dark), tacking margin with tacks (iron: very
   bright) or empty nail holes (dark), and a patch (rectangle of another weave with a filled border).
9. **Image formation.** ``I = I0 heel(x) exp(-sum_i mu_i t_i)``; scatter adds a broad low-pass copy of the
   primary (scatter-to-primary ratio ``scatter + 0.4 paint^2``: thick lead layers scatter more); detector/screen
   blur by an MTF (Gaussian or Lorentzian); then either film (H-D characteristic curve,
   granularity ~ sqrt(D) with 1-2 px correlation, scanned in transmission, scanner row/column gain banding,
   gamma-encoded) or a digital detector (quantum noise, row/column gain, log or linear display). Auto-levels
   by percentiles, optional histogram equalisation and inversion, quantisation to 8 or 16 bits.

Conventions (verified by the tests)
-----------------------------------
* Image axes: row y goes DOWN, column x goes right; positions in cm from the top-left corner of the plate,
  pixel (i, j) centred at ``((j + 0.5) / px_per_cm, (i + 0.5) / px_per_cm)``.
* "horizontal" threads run left-right; their density is counted along the vertical axis. "vertical" threads
  run top-bottom; density counted along the horizontal axis.
* **Density truth** is threads per cm measured PERPENDICULAR to the threads (what a thread counter or the radius
  of a 2-D Fourier peak measures). The count per cm of the image axis (crossings of a vertical line by the
  horizontal threads, per cm) is ``density * cos(angle)`` and is kept in ``meta["horizontal_axis_count"]`` /
  ``meta["vertical_axis_count"]`` (they differ by < 0.14 % at 3 degrees).
* **Angles** in degrees, each system's deviation from its axis, counter-clockwise positive AS DISPLAYED (y down).
  A horizontal thread with +a rises to the right (direction (cos a, -sin a) in (x, y_down)); a vertical thread
  with +a, followed upwards, has direction (-sin a, -cos a): going up its x decreases (it looks like a
  backslash). Equal angles on both systems are a rigid counter-clockwise rotation of the canvas.
* Plate truths (``PlateB.horizontal`` ... ``vertical_angle``) are the mean gradient of the continuous thread index
  over the whole plate; requested densities are met to ~1e-6 (spacings are rescaled), angles equal the requested
  ones up to the waviness (typically < 0.05 degrees). ``meta["*_nominal"]`` keep the requested values.
  A patch does not change the plate truths; :func:`window_truth` uses the patch weave inside its rectangle.
* Polarity: dense material (lead white, thick ground) is BRIGHT; ``inverted=True`` flips it.
* Units: lengths on the plate in cm, layer thicknesses in mm, attenuation coefficients in 1/mm.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from scipy import ndimage
from scipy.spatial import cKDTree

SUITES = ("easy", "hard", "lattice", "coarse", "lining")
CROSS_SECTIONS = ("elliptical", "lenticular", "rounded", "twoply")

MU_CANVAS = 0.05  # 1/mm, cellulose at ~25-30 kV
MU_LEAD_PAINT = 10.0  # 1/mm, lead white in oil
MU_OTHER_PAINT = 1.2  # 1/mm, earths, organic lakes, ...
MU_WOOD = 0.03  # 1/mm, stretcher wood
TAU_IRON = 5.0  # optical depth of an iron tack head (saturates)

#: factors that may be given as one value or as ``[horizontal, vertical]``.
PER_SYSTEM = ("width_frac", "width_var", "slub_rate", "slub_size", "spacing_sd", "spacing_phi", "thick_sd", "crimp")

#: every factor name accepted by :func:`make_plate` (besides the geometry keywords).
FACTOR_NAMES = (
    # yarn / weave
    "cross_section", "width_frac", "width_var", "width_corr_cm", "slub_rate", "slub_size", "slub_len_cm",
    "spacing_sd", "spacing_phi", "thick_sd", "stripes", "crimp", "crimp_shape", "relief", "waviness",
    "groove", "twist_cm",
    # ground and interstices
    "ground_mm", "levelling", "penetration", "mu_ground", "interstice", "interstice_strength", "interstice_size",
    # lining
    "lining", "lining_strength", "lining_horizontal", "lining_vertical", "lining_angle",
    # paint and defects
    "paint", "paint_lead", "cracks", "crack_cell_cm", "stretcher", "nails", "patch", "tear",
    # imaging
    "response", "film_gamma", "exposure", "scatter", "heel", "blur_px", "blur_kind", "grain", "grain_px",
    "banding", "banding_axis", "equalise", "inverted", "bit_depth",
)  # fmt: skip

#: clean imaging and no paint or defects (geometry still drawn from the seed): ``make_plate(s, **PLAIN)``.
PLAIN: dict[str, Any] = {
    "interstice": "none", "lining": False, "paint": 0.0, "cracks": 0.0, "stretcher": "none", "nails": 0,
    "patch": False, "tear": False, "scatter": 0.0, "heel": 0.0, "blur_px": 0.5, "blur_kind": "gauss",
    "grain": 0.0, "banding": 0.0, "equalise": False, "inverted": False, "bit_depth": None, "response": "log",
}  # fmt: skip


@dataclass
class PlateB:
    """One simulated X-ray plate and its truth.

    ``image`` is 2-D in displayed orientation: float32 in [0, 1] (quantised to k/255 when ``bit_depth == 8``)
    or uint16 when ``bit_depth == 16``. Densities in threads/cm (perpendicular to the threads), angles in
    degrees (counter-clockwise as displayed), centre positions in cm from the top/left edge.
    """

    image: np.ndarray
    px_per_cm: float
    horizontal: float
    vertical: float
    horizontal_angle: float
    vertical_angle: float
    h_centres_cm: np.ndarray
    v_centres_cm: np.ndarray
    meta: dict
    geom: dict = field(default_factory=dict, repr=False, compare=False)  # thread systems, for window_truth


# ----------------------------------------------------------------------------------------------------------
# thread systems
# ----------------------------------------------------------------------------------------------------------


@dataclass(eq=False)
class _System:
    """One thread system: centrelines in the perpendicular coordinate s (cm) and yarn properties.

    ``s`` is the signed perpendicular distance from the plate centre (increasing downwards for "h", to the
    right for "v"), ``t`` the coordinate along the threads (cm; rightwards for "h", upwards for "v").
    """

    axis: str
    angle: float  # degrees
    xc: float  # cm
    yc: float  # cm
    centres: np.ndarray  # cm, ascending
    wave: np.ndarray  # (m, 4): amplitude cm, kx rad/cm, ky rad/cm, phase rad
    wfrac: np.ndarray  # per thread, width / local spacing
    thick: np.ndarray  # per thread thickness multiplier
    wtab: np.ndarray  # (K, Nt) along-thread width/thickness modulation
    t0: float  # cm, first column of wtab
    dt: float  # cm, step of wtab
    t_mm: float  # nominal thread thickness, mm
    a_mm: float  # crimp amplitude, mm
    crimp_shape: float
    cross_section: str
    groove: float
    twist_cm: float
    twist_phase: np.ndarray  # per thread, rad

    def coords(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Perpendicular and along-thread coordinates (cm) of points (x, y) in cm."""
        th = math.radians(self.angle)
        c, s = math.cos(th), math.sin(th)
        dx, dy = x - self.xc, y - self.yc
        if self.axis == "h":
            return dy * c + dx * s, dx * c - dy * s
        return dx * c - dy * s, -dx * s - dy * c

    def displacement(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Waviness displacement (cm) along s."""
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        out = np.zeros(np.broadcast_shapes(x.shape, y.shape))
        grid = x.ndim == 2 and y.ndim == 2 and x.shape[0] == 1 and y.shape[1] == 1
        for a, kx, ky, ph in self.wave:
            if grid:  # separable: sin(p + q) = sin p cos q + cos p sin q, outer products only
                px, qy = kx * x + ph, ky * y
                out += (a * np.sin(px)) * np.cos(qy) + (a * np.cos(px)) * np.sin(qy)
            else:
                out += a * np.sin(kx * x + ky * y + ph)
        return out

    def index(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Continuous thread index n (integer at centrelines), displaced s (cm) and t (cm)."""
        s, t = self.coords(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
        se = s - self.displacement(x, y)
        n = np.interp(se, self.centres, np.arange(self.centres.size, dtype=float))
        return n, se, t

    def width_mod(self, k: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Along-thread width/thickness modulation of thread k at t (cm), linear interpolation."""
        f = (t - self.t0) / self.dt
        i0 = np.clip(np.floor(f).astype(np.int64), 0, self.wtab.shape[1] - 2)
        w = np.clip(f - i0, 0.0, 1.0)
        return self.wtab[k, i0] * (1.0 - w) + self.wtab[k, i0 + 1] * w


def _pair(v: Any) -> tuple[Any, Any]:
    if isinstance(v, (list, tuple)):
        return v[0], v[1]
    return v, v


def _make_system(
    rng: np.random.Generator, axis: str, density: float, angle: float, xc: float, yc: float, ext_s: float,
    ext_t: float, yarn: dict, side: int,
) -> _System:  # fmt: skip
    """Draw one thread system. ``side`` 0 = horizontal, 1 = vertical (selects per-system yarn values)."""
    p = 1.0 / density
    sd = float(_pair(yarn["spacing_sd"])[side])
    phi = float(_pair(yarn["spacing_phi"])[side])
    k = int(2 * ext_s * density * 1.25) + 16
    while True:
        xi = rng.standard_normal(k)
        e = np.empty(k)
        e[0] = sd * xi[0]
        inn = sd * math.sqrt(max(1.0 - phi * phi, 0.0))
        for i in range(1, k):  # AR(1) spacing random walk
            e[i] = phi * e[i - 1] + inn * xi[i]
        gaps = p * np.clip(1.0 + e, 0.5, 1.5)
        c = np.concatenate([[0.0], np.cumsum(gaps)])
        mid = c.size // 2
        c = c - c[mid] - rng.uniform(0.0, p)
        if c[0] < -ext_s - 3 * p and c[-1] > ext_s + 3 * p:
            break
        k = int(k * 1.5)
    kk = c.size
    # waviness: wave vectors within +-30 degrees of the thread direction (bending, not bunching)
    th = math.radians(angle)
    tdir = math.atan2(-math.sin(th), math.cos(th)) if axis == "h" else math.atan2(-math.cos(th), -math.sin(th))
    m = 4
    lam = rng.uniform(1.2, 5.0, m)
    ang = tdir + rng.uniform(-math.pi / 6, math.pi / 6, m)
    amp = float(yarn["waviness"]) * p * rng.uniform(0.4, 1.0, m) / math.sqrt(m)
    kvec = 2 * np.pi / lam
    wave = np.stack([amp, kvec * np.cos(ang), kvec * np.sin(ang), rng.uniform(0, 2 * np.pi, m)], 1)
    # per-thread width fraction and thickness (AR-correlated thickness, optional stripes)
    wf = float(_pair(yarn["width_frac"])[side])
    wfrac = np.clip(wf * (1.0 + 0.04 * rng.standard_normal(kk)), 0.3, 1.05)
    tsd = float(_pair(yarn["thick_sd"])[side])
    z = ndimage.gaussian_filter1d(rng.standard_normal(kk), 1.0)
    z /= max(float(z.std()), 1e-9)
    thick = np.exp(tsd * z)
    stripes = yarn.get("stripes")
    spec = None if not stripes else stripes.get("h" if side == 0 else "v")
    if spec:
        period, count, factor = int(spec[0]), int(spec[1]), float(spec[2])
        off = int(rng.integers(0, period))
        sel = ((np.arange(kk) + off) % period) < count
        thick[sel] *= factor
        wfrac[sel] = np.clip(wfrac[sel] * math.sqrt(factor), 0.3, 1.1)
    # along-thread modulation table: smooth width variation + slubs
    dt = 0.02
    t0 = -ext_t - 0.1
    nt = int(2 * (ext_t + 0.1) / dt) + 2
    wv = float(_pair(yarn["width_var"])[side])
    noise = ndimage.gaussian_filter1d(rng.standard_normal((kk, nt)), float(yarn["width_corr_cm"]) / dt, axis=1)
    noise /= max(float(noise.std()), 1e-9)
    wtab = 1.0 + wv * noise
    rate = float(_pair(yarn["slub_rate"])[side])
    size = float(_pair(yarn["slub_size"])[side])
    nslub = int(rng.poisson(rate * (nt * dt) * kk)) if rate > 0 and size > 0 else 0
    if nslub:
        tt = np.arange(nt) * dt + t0
        ids = rng.integers(0, kk, nslub)
        pos = rng.uniform(t0, t0 + nt * dt, nslub)
        amps = size * rng.uniform(0.5, 1.5, nslub)
        lens = float(yarn["slub_len_cm"]) * rng.uniform(0.5, 1.5, nslub)
        for i, p0, a, ln in zip(ids, pos, amps, lens, strict=True):
            lo = max(int((p0 - 2 * ln - t0) / dt), 0)
            hi = min(int((p0 + 2 * ln - t0) / dt) + 2, nt)
            wtab[i, lo:hi] += a * np.exp(-(((tt[lo:hi] - p0) / (0.5 * ln)) ** 2))
    wtab = np.clip(wtab, 0.4, 3.0)
    t_mm = float(yarn["relief"]) * 10.0 * p
    return _System(
        axis=axis, angle=float(angle), xc=xc, yc=yc, centres=c, wave=wave, wfrac=wfrac, thick=thick, wtab=wtab,
        t0=t0, dt=dt, t_mm=t_mm, a_mm=0.5 * t_mm * float(_pair(yarn["crimp"])[side]),
        crimp_shape=float(yarn["crimp_shape"]), cross_section=str(yarn["cross_section"]),
        groove=float(yarn["groove"]), twist_cm=float(yarn["twist_cm"]), twist_phase=rng.uniform(0, 2 * np.pi, kk),
    )  # fmt: skip


def _mean_gradient(sy: _System, x0: float, y0: float, wx: float, wy: float, m: int = 65) -> tuple[float, float]:
    """Mean gradient (gx, gy) of the continuous thread index over a wx x wy rectangle (threads per cm).

    By the divergence theorem this is the exact number of centreline crossings across the rectangle's
    extent per cm, averaged over the rectangle (fractional crossings by linear interpolation between
    neighbouring centrelines).
    """
    wts = np.ones(m)
    wts[0] = wts[-1] = 0.5
    wts /= wts.sum()
    xs = np.linspace(x0 - wx / 2, x0 + wx / 2, m)
    ys = np.linspace(y0 - wy / 2, y0 + wy / 2, m)
    gy = float(np.sum(wts * (sy.index(xs, np.full(m, y0 + wy / 2))[0] - sy.index(xs, np.full(m, y0 - wy / 2))[0])))
    gx = float(np.sum(wts * (sy.index(np.full(m, x0 + wx / 2), ys)[0] - sy.index(np.full(m, x0 - wx / 2), ys)[0])))
    return gx / wx, gy / wy


def _density_angle(sy: _System, x0: float, y0: float, wx: float, wy: float) -> tuple[float, float]:
    gx, gy = _mean_gradient(sy, x0, y0, wx, wy)
    dens = math.hypot(gx, gy)
    ang = math.degrees(math.atan2(gx, gy)) if sy.axis == "h" else math.degrees(math.atan2(-gy, gx))
    return dens, ang


def _fit_density(sy: _System, target: float, xc: float, yc: float, w: float, h: float) -> None:
    """Rescale the centrelines so the plate-mean density equals ``target`` (threads/cm)."""
    for _ in range(3):
        d, _a = _density_angle(sy, xc, yc, w, h)
        sy.centres = sy.centres * (d / target)


# ----------------------------------------------------------------------------------------------------------
# weave surface
# ----------------------------------------------------------------------------------------------------------


def _profile(u: np.ndarray, kind: str, groove: np.ndarray | float) -> np.ndarray:
    """Thickness fraction across a thread at u = distance / half-width (0 outside |u| < 1)."""
    a = np.minimum(np.abs(u), 1.0)
    if kind == "elliptical":
        p = np.sqrt(1.0 - a * a)
    elif kind == "lenticular":
        p = 1.0 - a * a
    elif kind == "rounded":
        p = (1.0 - a**4) ** 0.25
    elif kind == "twoply":
        p = np.sqrt(1.0 - a * a) * (1.0 - groove * np.exp(-((a / 0.3) ** 2)))
    else:
        raise ValueError(f"unknown cross_section {kind!r}; one of {CROSS_SECTIONS}")
    return p


def _layer(sy: _System, n: np.ndarray, se: np.ndarray, t: np.ndarray, n_other: np.ndarray):
    """Top surface (mm), thickness (mm) and coverage of the nearest thread of one system."""
    kk = sy.centres.size
    k = np.clip(np.rint(n).astype(np.int64), 1, kk - 2)
    d = se - sy.centres[k]
    sp = 0.5 * (sy.centres[k + 1] - sy.centres[k - 1])
    wm = sy.width_mod(k, t)
    u = d / (0.5 * sy.wfrac[k] * sp * wm)
    groove = 0.0
    if sy.cross_section == "twoply":  # groove depth varies with the twist along the thread
        groove = sy.groove * (0.7 + 0.3 * np.cos(2 * np.pi * t / sy.twist_cm + sy.twist_phase[k]))
    thick = sy.t_mm * sy.thick[k] * np.sqrt(wm) * _profile(u, sy.cross_section, groove)
    c = np.cos(np.pi * n_other).astype(np.float32)
    crimp = np.copysign(np.abs(c) ** np.float32(sy.crimp_shape), c)
    parity = 1.0 - 2.0 * (k & 1)
    z = sy.a_mm * crimp * (parity if sy.axis == "h" else -parity)
    inside = np.abs(u) < 1.0
    top = np.where(inside, z + 0.5 * thick, -np.inf)
    return top, np.where(inside, thick, 0.0), inside


def _weave(hs: _System, vs: _System, x: np.ndarray, y: np.ndarray, penetration: float):
    """Canvas top surface S (mm, interstices at the penetration floor), canvas thickness (mm), indices."""
    nh, seh, th = hs.index(x, y)
    nv, sev, tv = vs.index(x, y)
    top_h, t_h, _ = _layer(hs, nh, seh, th, nv)
    top_v, t_v, _ = _layer(vs, nv, sev, tv, nh)
    depth = max(hs.a_mm + 0.5 * hs.t_mm, vs.a_mm + 0.5 * vs.t_mm)
    surf = np.maximum(np.maximum(top_h, top_v), -penetration * depth)
    return surf, t_h + t_v, nh, nv, depth


def _bridge(surf: np.ndarray, period_px: float) -> np.ndarray:
    """Ground-side surface: the paste bridges crevices much narrower than a thread (partial filling)."""
    return np.maximum(surf, ndimage.gaussian_filter(surf, max(0.06 * period_px, 0.5), mode="nearest"))


def _ground(surf: np.ndarray, depth: float, period_px: float, f: dict) -> np.ndarray:
    """Ground thickness (mm): level top (partially following the smoothed relief) minus canvas surface."""
    follow = _gauss_fast(surf, 0.35 * period_px)
    top = depth + float(f["ground_mm"]) + float(f["levelling"]) * (follow - float(surf.mean()))
    return np.maximum(top - surf, 0.0)


def _dots(rng: np.random.Generator, nh: np.ndarray, nv: np.ndarray, size: float) -> np.ndarray:
    """Interstice dot field (~1 at the centre of every interstice), per-interstice amplitude jitter."""
    fh = nh - np.floor(nh) - 0.5
    fv = nv - np.floor(nv) - 0.5
    amp = np.exp(0.25 * rng.standard_normal((61, 59)))
    kh = np.floor(nh).astype(np.int64) % 61
    kv = np.floor(nv).astype(np.int64) % 59
    return amp[kh, kv] * np.exp(-(fh * fh + fv * fv) / (2.0 * size * size))


# ----------------------------------------------------------------------------------------------------------
# paint and defects
# ----------------------------------------------------------------------------------------------------------


def _interp_matrix(n_out: int, n_in: int, step: float, offset: float) -> np.ndarray:
    """Linear-interpolation matrix from a coarse grid (point j at pixel offset + j * step) to n_out pixels."""
    if n_in == 1:
        return np.ones((n_out, 1))
    u = np.clip((np.arange(n_out) - offset) / step, 0.0, n_in - 1.0)
    j = np.minimum(np.floor(u).astype(np.int64), n_in - 2)
    w = u - j
    m = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    m[rows, j] = 1.0 - w
    m[rows, j + 1] += w
    return m


def _upsample(small: np.ndarray, shape: tuple[int, int], step: float, offset: float = 0.0) -> np.ndarray:
    """Bilinear upsampling of a coarse grid to ``shape`` pixels (separable, two matrix products)."""
    my = _interp_matrix(shape[0], small.shape[0], step, offset)
    mx = _interp_matrix(shape[1], small.shape[1], step, offset)
    return my @ small @ mx.T


def _up2(small: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear x2 upsampling of a grid whose point j sits at pixel 2 j (midpoints averaged)."""
    a = np.empty((2 * small.shape[0] - 1, small.shape[1]))
    a[0::2] = small
    a[1::2] = 0.5 * (small[:-1] + small[1:])
    b = np.empty((a.shape[0], 2 * small.shape[1] - 1))
    b[:, 0::2] = a
    b[:, 1::2] = 0.5 * (a[:, :-1] + a[:, 1:])
    return b[: shape[0], : shape[1]]


def _block_mean(img: np.ndarray, step: int) -> np.ndarray:
    """Mean over step x step blocks (edge-padded); block j is centred at pixel j * step + (step - 1) / 2."""
    h, w = -(-img.shape[0] // step) * step, -(-img.shape[1] // step) * step
    a = np.pad(img, ((0, h - img.shape[0]), (0, w - img.shape[1])), mode="edge")
    return a.reshape(h // step, step, w // step, step).mean(axis=(1, 3))


def _gauss_fast(img: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian low-pass (edges: nearest); large sigmas are filtered on a block-averaged grid."""
    if sigma_px < 16.0:
        return ndimage.gaussian_filter(img, sigma_px, mode="nearest", truncate=3.0)
    step = int(sigma_px // 4)
    small = ndimage.gaussian_filter(_block_mean(img, step), math.sqrt(sigma_px**2 - step**2 / 12.0) / step,
                                    mode="nearest")  # fmt: skip
    return _upsample(small, img.shape, step, (step - 1) / 2.0)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """Zero-mean unit-std Gaussian-filtered white noise (computed on a coarse grid for large sigma)."""
    step = max(1, int(sigma_px / 4))
    small = (shape[0] // step + 2, shape[1] // step + 2)
    z = ndimage.gaussian_filter(rng.standard_normal(small), sigma_px / step, mode="wrap")
    z = _upsample(z, shape, step) if step > 1 else z[: shape[0], : shape[1]]
    return (z - z.mean()) / max(float(z.std()), 1e-9)


def _paint(rng: np.random.Generator, x: np.ndarray, y: np.ndarray, ppc: float, level: float, lead_frac: float):
    """Lead-white and low-mu paint thickness maps (mm) for a paint level in [0, 1]."""
    shape = (y.size, x.size)
    t_lead = np.zeros(shape)
    t_other = np.zeros(shape)
    if level <= 0:
        return t_lead, t_other
    w_cm, h_cm = x[-1] + x[0], y[-1] + y[0]
    base = level * rng.uniform(0.02, 0.09)
    t_lead += base * (1.0 + 0.35 * _smooth_noise(rng, shape, 0.8 * ppc))
    lumps = np.exp(0.8 * _smooth_noise(rng, shape, rng.uniform(0.03, 0.12) * ppc))  # impasto, lognormal
    t_lead += level**1.5 * rng.uniform(0.02, 0.1) * lumps / float(lumps.mean())
    n = int(rng.poisson(level * 10.0 * w_cm * h_cm / 16.0)) + (1 if level > 0.3 else 0)
    for _ in range(n):
        rad = 10 ** rng.uniform(0.0, 1.4)  # arc radius, cm
        half = rng.uniform(0.08, 0.45) * (0.6 + level)  # half-width, cm
        length = rng.uniform(0.6, 3.5)
        h = level * rng.uniform(0.03, 0.12) + level**2 * rng.uniform(0.0, 0.45)  # mm, impasto when heavy
        x0, y0 = rng.uniform(-0.5, w_cm + 0.5), rng.uniform(-0.5, h_cm + 0.5)
        head = rng.uniform(0, 2 * np.pi)
        turn = 1.0 if rng.random() < 0.5 else -1.0
        cx = x0 - turn * rad * math.sin(head)
        cy = y0 + turn * rad * math.cos(head)
        a0 = math.atan2(y0 - cy, x0 - cx)
        sweep = np.linspace(0.0, length / rad, 24) * turn
        px = cx + rad * np.cos(a0 + sweep)
        py = cy + rad * np.sin(a0 + sweep)
        j0 = int(np.clip(np.floor((px.min() - half) * ppc), 0, x.size))
        j1 = int(np.clip(np.ceil((px.max() + half) * ppc) + 1, 0, x.size))
        i0 = int(np.clip(np.floor((py.min() - half) * ppc), 0, y.size))
        i1 = int(np.clip(np.ceil((py.max() + half) * ppc) + 1, 0, y.size))
        if j1 <= j0 or i1 <= i0:
            continue
        dx = (x[None, j0:j1] - cx).astype(np.float32)
        dy = (y[i0:i1, None] - cy).astype(np.float32)
        r = np.hypot(dx, dy)
        along = rad * np.mod((np.arctan2(dy, dx) - np.float32(a0)) * np.float32(turn), np.float32(2 * np.pi))
        v = (r - rad) / half
        pexp = rng.uniform(2.0, 6.0)
        prof = np.clip(1.0 - np.abs(v) ** pexp, 0.0, None) * (1.0 + rng.uniform(0, 0.5) * np.abs(v) ** 8)
        ridges = 1.0
        for _r in range(3):
            ridges = ridges + rng.uniform(0.05, 0.25) * np.sin(rng.uniform(3, 15) * np.pi * v + rng.uniform(0, 6.3))
        taper = np.clip(along / 0.25, 0, 1) ** 0.5 * np.clip((length - along) / 0.4, 0, 1) * (1 - 0.5 * along / length)
        thick = h * prof * np.clip(ridges, 0, None) * np.where(along <= length, taper, 0.0)
        if rng.random() < lead_frac:
            t_lead[i0:i1, j0:j1] += thick
        else:
            t_other[i0:i1, j0:j1] += thick
    return t_lead, t_other


def _cracks(rng: np.random.Generator, shape: tuple[int, int], ppc: float, level: float, cell: float) -> np.ndarray:
    """Craquelure mask in [0, 1]: edges of a warped anisotropic Voronoi diagram, some edges dropped."""
    hcm, wcm = shape[0] / ppc, shape[1] / ppc
    ns = max(int((hcm + 2 * cell) * (wcm + 2 * cell) / cell**2), 4)
    seeds = np.stack([rng.uniform(-cell, wcm + cell, ns), rng.uniform(-cell, hcm + cell, ns)], 1)
    psi = rng.uniform(0, np.pi)
    stretch = rng.uniform(1.0, 1.8)
    rot = np.array([[math.cos(psi), math.sin(psi)], [-math.sin(psi), math.cos(psi)]])
    scale = np.array([1.0, stretch])

    def warp(pts: np.ndarray) -> np.ndarray:
        q = pts.copy()
        for i in range(5):  # smooth bends (cell scale) and a finer wiggle
            k = (rng_w.uniform(1.0, 3.0) if i < 3 else rng_w.uniform(6.0, 12.0)) / cell
            amp = (0.18 if i < 3 else 0.03) * cell
            d = rng_w.uniform(0, 2 * np.pi)
            q[:, 0] += amp * np.sin(k * (pts[:, 1] * math.cos(d) + pts[:, 0] * math.sin(d)) + d)
            q[:, 1] += amp * np.sin(k * (pts[:, 0] * math.cos(d) - pts[:, 1] * math.sin(d)) - d)
        return (q @ rot.T) * scale

    step = 2
    ys = (np.arange(0, shape[0] + step, step) + 0.5) / ppc
    xs = (np.arange(0, shape[1] + step, step) + 0.5) / ppc
    gx, gy = np.meshgrid(xs, ys)
    pts = np.stack([gx.ravel(), gy.ravel()], 1)
    wseed = int(rng.integers(1 << 31))
    rng_w = np.random.default_rng(wseed)
    wseeds = warp(seeds)
    rng_w = np.random.default_rng(wseed)
    wpts = warp(pts)
    dist, idx = cKDTree(wseeds).query(wpts, k=2)
    sep = np.linalg.norm(wseeds[idx[:, 1]] - wseeds[idx[:, 0]], axis=1)
    gap = ((dist[:, 1] ** 2 - dist[:, 0] ** 2) / np.maximum(sep, 1e-9)).reshape(gx.shape)  # 2 x bisector distance
    keep_tab = (rng.random((ns, ns)) < rng.uniform(0.6, 0.95)).astype(float)
    i_lo = np.minimum(idx[:, 0], idx[:, 1])
    i_hi = np.maximum(idx[:, 0], idx[:, 1])
    keep = keep_tab[i_lo, i_hi].reshape(gx.shape)
    gap = _up2(gap, shape)
    keep = np.repeat(np.repeat(keep, step, 0), step, 1)[: shape[0], : shape[1]]
    width = (rng.uniform(1.2, 2.5) / ppc) * np.clip(1.0 + 0.4 * _smooth_noise(rng, shape, 0.2 * ppc), 0.3, 2.0)
    width *= 0.7 + 0.6 * level
    return keep * np.clip(1.5 - gap / width, 0.0, 1.0).clip(0, 1)


def _tear(rng: np.random.Generator, shape: tuple[int, int], ppc: float) -> tuple[np.ndarray, list[float]]:
    """Tear mask in [0, 1] along a random-walk path of irregular width; also its bounding box (cm)."""
    hcm, wcm = shape[0] / ppc, shape[1] / ppc
    length = rng.uniform(0.8, min(2.5, 0.8 * max(hcm, wcm)))
    step = 0.5 / ppc
    n = int(length / step)
    head = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.12, n)) * 0.5
    x0, y0 = rng.uniform(0.25 * wcm, 0.75 * wcm), rng.uniform(0.25 * hcm, 0.75 * hcm)
    px = x0 + np.cumsum(step * np.cos(head))
    py = y0 + np.cumsum(step * np.sin(head))
    j = np.clip(np.rint(px * ppc - 0.5).astype(int), 0, shape[1] - 1)
    i = np.clip(np.rint(py * ppc - 0.5).astype(int), 0, shape[0] - 1)
    wvar = ndimage.gaussian_filter1d(rng.standard_normal(n), 8.0)
    wvar /= max(float(wvar.std()), 1e-9)
    wpath = np.clip(rng.uniform(0.8, 2.2) * (1.0 + 0.4 * wvar), 0.3, 4.0)  # half-width, px
    feat = np.ones(shape, dtype=bool)
    feat[i, j] = False
    wmap = np.zeros(shape)
    wmap[i, j] = wpath
    dist, (ii, jj) = ndimage.distance_transform_edt(feat, return_indices=True)
    mask = np.clip(wmap[ii, jj] - dist + 0.5, 0.0, 1.0)
    return mask, [float(px.min()), float(py.min()), float(px.max()), float(py.max())]


def _edge_distance(edge: str, x: np.ndarray, y: np.ndarray, wcm: float, hcm: float) -> np.ndarray:
    if edge == "top":
        return np.broadcast_to(y[:, None], (y.size, x.size))
    if edge == "bottom":
        return np.broadcast_to(hcm - y[:, None], (y.size, x.size))
    if edge == "left":
        return np.broadcast_to(x[None, :], (y.size, x.size))
    return np.broadcast_to(wcm - x[None, :], (y.size, x.size))


# ----------------------------------------------------------------------------------------------------------
# image formation
# ----------------------------------------------------------------------------------------------------------


def _mtf_blur(img: np.ndarray, sigma_px: float, kind: str) -> np.ndarray:
    """Detector/screen blur by an MTF: Gaussian, or Lorentzian ``1 / (1 + (2 pi sigma f)^2)`` (screen)."""
    if sigma_px <= 0:
        return img
    if kind == "gauss":
        return ndimage.gaussian_filter(img, sigma_px, mode="reflect")
    pad = int(min(4 * sigma_px + 8, min(img.shape) - 1))
    a = np.pad(img, pad, mode="reflect")
    fy = np.fft.fftfreq(a.shape[0])[:, None]
    fx = np.fft.rfftfreq(a.shape[1])[None, :]
    f2 = fy * fy + fx * fx
    if kind == "gauss":
        mtf = np.exp(-2.0 * np.pi**2 * sigma_px**2 * f2)
    elif kind == "screen":
        mtf = 1.0 / (1.0 + (2.0 * np.pi * sigma_px) ** 2 * f2)
    else:
        raise ValueError(f"unknown blur_kind {kind!r}")
    out = np.fft.irfft2(np.fft.rfft2(a) * mtf, s=a.shape)
    return out[pad:-pad, pad:-pad]


def _lowpass_big(img: np.ndarray, sigma_px: float) -> np.ndarray:
    """Broad Gaussian low-pass (scatter kernel)."""
    return _gauss_fast(img, sigma_px)


def _banding(rng: np.random.Generator, n: int, level: float) -> np.ndarray:
    """Scanner gain profile along rows or columns: AR noise + a few periodic stripes + a step."""
    z = np.empty(n)
    z[0] = 0.0
    e = rng.standard_normal(n)
    for i in range(1, n):
        z[i] = 0.7 * z[i - 1] + e[i]
    z /= max(float(z.std()), 1e-9)
    k = np.arange(n)
    per = np.zeros(n)
    for _ in range(2):
        per += rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * k / rng.uniform(3, 40) + rng.uniform(0, 6.3))
    step = np.where(k > rng.integers(0, n), rng.normal(0, 1), 0.0)
    return 1.0 + level * (0.015 * z + 0.01 * per + 0.01 * step)


def _develop(rng: np.random.Generator, expo: np.ndarray, f: dict) -> np.ndarray:
    """From detector exposure to displayed image in [0, 1] (dense bright)."""
    shape = expo.shape
    grain = float(f["grain"])
    noise = _smooth_noise(rng, shape, float(f["grain_px"])) if grain > 0 else 0.0
    gain = 1.0
    if float(f["banding"]) > 0:
        axis = str(f["banding_axis"])
        prof = _banding(rng, shape[0] if axis == "rows" else shape[1], float(f["banding"]))
        gain = prof[:, None] if axis == "rows" else prof[None, :]
    resp = str(f["response"])
    if resp == "film":
        loge = np.log10(expo)
        loge = loge - float(np.median(loge)) + float(f["exposure"])
        dmin, dmax = 0.2, 3.8
        dens = dmin + (dmax - dmin) / (1.0 + np.exp(-4.0 * float(f["film_gamma"]) * loge / (dmax - dmin)))
        dens = dens + grain * 0.06 * np.sqrt(dens / 2.0) * noise
        trans = 10.0 ** (-dens) * gain
        disp = np.maximum(trans, 1e-9) ** (1.0 / 2.2)
    elif resp in ("log", "linear"):
        sig = expo / float(np.median(expo)) * math.exp(float(f["exposure"]))
        sig = np.maximum(sig * (1.0 + grain * 0.04 * noise) * gain, 1e-6)
        disp = -np.log(sig) if resp == "log" else -sig
    else:
        raise ValueError(f"unknown response {resp!r}")
    plo = float(rng.uniform(0.05, 0.8))
    lo, hi = np.percentile(disp, [plo, 100.0 - plo])
    img = np.clip((disp - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    if f["equalise"]:
        hist, edges = np.histogram(img, bins=4096, range=(0.0, 1.0))
        cdf = np.cumsum(hist).astype(float)
        cdf /= cdf[-1]
        img = np.interp(img, edges[1:], cdf)
    if f["inverted"]:
        img = 1.0 - img
    return img


def _octave_ratio(img: np.ndarray, ppc: float, h: tuple[float, float], v: tuple[float, float]) -> list[float]:
    """Spectral amplitude at 2f over that at f for each system ([horizontal, vertical]) in the final image.

    Diagnostic of the octave trap (> 1: the second harmonic beats the fundamental). Hann-windowed 2-D FFT;
    each peak is the maximum within +-6 % in radius and +-2 bins across, around the true (f, angle).
    """
    a = (img - img.mean()) * np.outer(np.hanning(img.shape[0]), np.hanning(img.shape[1]))
    spec = np.abs(np.fft.fft2(a))
    fy = np.fft.fftfreq(img.shape[0], 1.0 / ppc)[:, None]
    fx = np.fft.fftfreq(img.shape[1], 1.0 / ppc)[None, :]
    bin_cm = ppc / min(img.shape)
    out = []
    for (dens, ang), axis in ((h, "h"), (v, "v")):
        th = math.radians(ang)
        ny, nx = (math.cos(th), math.sin(th)) if axis == "h" else (-math.sin(th), math.cos(th))
        along = fy * ny + fx * nx
        across = np.abs(-fy * nx + fx * ny)
        amps = []
        for mult in (1.0, 2.0):
            f0 = mult * dens
            sel = (np.abs(along - f0) <= max(0.06 * f0, bin_cm)) & (across <= 2.0 * bin_cm)
            amps.append(float(spec[sel].max()) if sel.any() else 0.0)
        out.append(round(amps[1] / max(amps[0], 1e-12), 4))
    return out


# ----------------------------------------------------------------------------------------------------------
# factor drawing
# ----------------------------------------------------------------------------------------------------------


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return round(float(rng.uniform(lo, hi)), 4)


def _u2(rng: np.random.Generator, lo: float, hi: float) -> list[float]:
    return [_u(rng, lo, hi), _u(rng, lo, hi)]


def _pick(rng: np.random.Generator, items: list | tuple, p: list[float] | None = None) -> Any:
    return items[int(rng.choice(len(items), p=p))]


def draw_yarn(rng: np.random.Generator, *, coarse: bool = False) -> dict:
    """Draw the yarn/weave factors (per-system lists are [horizontal, vertical])."""
    cs = _pick(rng, CROSS_SECTIONS, [0.3, 0.25, 0.3, 0.15]) if not coarse else _pick(rng, ["twoply", "rounded"])
    return {
        "cross_section": cs, "width_frac": _u2(rng, 0.68, 0.93), "width_var": _u2(rng, 0.03, 0.15),
        "width_corr_cm": _u(rng, 0.08, 0.3), "slub_rate": _u2(rng, 0.0, 0.4), "slub_size": _u2(rng, 0.2, 0.8),
        "slub_len_cm": _u(rng, 0.15, 0.6), "spacing_sd": _u2(rng, 0.015, 0.06), "spacing_phi": _u2(rng, 0.3, 0.85),
        "thick_sd": _u2(rng, 0.03, 0.12), "stripes": None, "crimp": _u2(rng, 0.6, 1.1),
        "crimp_shape": _u(rng, 0.5, 1.0), "relief": _u(rng, 0.28, 0.45) if not coarse else _u(rng, 0.38, 0.5),
        "waviness": _u(rng, 0.0, 0.25), "groove": _u(rng, 0.3, 0.6), "twist_cm": _u(rng, 0.1, 0.4),
    }  # fmt: skip


def _angles(rng: np.random.Generator, lim: float) -> tuple[float, float]:
    rot = rng.uniform(-lim, lim)
    skew = rng.uniform(-0.5, 0.5) * min(lim, 1.0)
    return round(float(np.clip(rot + skew, -lim, lim)), 3), round(float(np.clip(rot - skew, -lim, lim)), 3)


def _draw_factors(name: str, rng: np.random.Generator) -> dict:
    """Complete factor set (with densities and angles) for one plate of suite ``name`` ("default" = easy)."""
    if name == "default":
        name = "easy"
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; one of {SUITES}")
    coarse = name == "coarse"
    f: dict[str, Any] = draw_yarn(rng, coarse=coarse)
    f.update({
        "ground_mm": _u(rng, 0.04, 0.15), "levelling": _u(rng, 0.0, 0.35), "penetration": _u(rng, 0.2, 0.6),
        "mu_ground": _u(rng, 2.0, 5.0), "interstice": "none", "interstice_strength": 0.0,
        "interstice_size": _u(rng, 0.1, 0.18), "lining": False, "lining_strength": 0.0, "lining_horizontal": None,
        "lining_vertical": None, "lining_angle": None, "paint": _u(rng, 0.0, 0.25), "paint_lead": _u(rng, 0.5, 0.9),
        "cracks": 0.0, "crack_cell_cm": _u(rng, 0.15, 0.6), "stretcher": "none", "nails": 0, "patch": False,
        "tear": False, "response": _pick(rng, ["film", "log"]), "film_gamma": _u(rng, 2.5, 4.0),
        "exposure": _u(rng, -0.2, 0.2), "scatter": _u(rng, 0.0, 0.15), "heel": _u(rng, -0.05, 0.05),
        "blur_px": _u(rng, 0.4, 1.2), "blur_kind": "gauss", "grain": _u(rng, 0.0, 0.25),
        "grain_px": _u(rng, 0.8, 1.6), "banding": 0.0, "banding_axis": _pick(rng, ["rows", "cols"]),
        "equalise": False, "inverted": False, "bit_depth": 8,
    })  # fmt: skip
    lo, hi, alim = 10.0, 25.0, 1.0
    if name == "hard":
        lo, hi, alim = 7.0, 26.0, 3.0
        ist = _pick(rng, ["none", "bright", "dark"], [0.6, 0.2, 0.2])
        f.update({
            "interstice": ist, "interstice_strength": _u(rng, 0.4, 1.0) if ist != "none" else 0.0,
            "paint": _u(rng, 0.2, 1.0), "cracks": _u(rng, 0.3, 1.0) if rng.random() < 0.5 else 0.0,
            "grain": _u(rng, 0.2, 1.0), "banding": _u(rng, 0.2, 1.0) if rng.random() < 0.5 else 0.0,
            "lining": bool(rng.random() < 0.3), "stretcher": _pick(rng, ["none", "bright", "dark"], [0.7, 0.15, 0.15]),
            "nails": int(rng.integers(1, 5)) if rng.random() < 0.2 else 0, "patch": bool(rng.random() < 0.15),
            "tear": bool(rng.random() < 0.2), "blur_px": _u(rng, 0.5, 2.0),
            "blur_kind": _pick(rng, ["gauss", "screen"]),
            "scatter": _u(rng, 0.05, 0.4), "response": _pick(rng, ["film", "log", "linear"], [0.5, 0.35, 0.15]),
            "exposure": _u(rng, -0.4, 0.4), "equalise": bool(rng.random() < 0.2), "inverted": bool(rng.random() < 0.2),
            "bit_depth": 16 if rng.random() < 0.2 else 8, "heel": _u(rng, -0.1, 0.1),
        })  # fmt: skip
    elif name == "lattice":
        lo, hi, alim = 8.0, 24.0, 2.0
        f.update({
            "interstice": _pick(rng, ["bright", "dark"]), "interstice_strength": _u(rng, 0.7, 1.0),
            "paint": _u(rng, 0.1, 0.6), "grain": _u(rng, 0.1, 0.5), "blur_px": _u(rng, 0.5, 1.5),
            "cracks": _u(rng, 0.3, 0.8) if rng.random() < 0.2 else 0.0, "scatter": _u(rng, 0.0, 0.3),
        })  # fmt: skip
    elif name == "coarse":
        lo, hi, alim = 7.0, 10.0, 2.0
        f.update({
            "interstice": _pick(rng, ["bright", "dark"], [0.35, 0.65]), "interstice_strength": _u(rng, 0.75, 1.0),
            "interstice_size": _u(rng, 0.06, 0.1), "paint": _u(rng, 0.75, 1.0), "grain": _u(rng, 0.2, 0.6),
            "blur_px": _u(rng, 0.5, 1.2), "cracks": _u(rng, 0.3, 0.8) if rng.random() < 0.3 else 0.0,
            "scatter": _u(rng, 0.05, 0.3), "width_frac": _u2(rng, 0.8, 0.95),
        })  # fmt: skip
    elif name == "lining":
        lo, hi, alim = 10.0, 24.0, 2.0
        f.update({"lining": True, "paint": _u(rng, 0.1, 0.6), "grain": _u(rng, 0.1, 0.5)})
    f["horizontal"] = _u(rng, lo, hi)
    f["vertical"] = _u(rng, lo, hi)
    f["horizontal_angle"], f["vertical_angle"] = _angles(rng, alim)
    if f["lining"]:
        _fill_lining(rng, f)
    return f


def _fill_lining(rng: np.random.Generator, f: dict) -> None:
    """Draw lining densities/angle/strength where missing (lining coarser or finer than the main canvas)."""
    for key, main in (("lining_horizontal", "horizontal"), ("lining_vertical", "vertical")):
        if f.get(key) is None:
            ratio = rng.uniform(0.55, 0.8) if rng.random() < 0.5 else rng.uniform(1.25, 1.7)
            f[key] = round(float(f[main]) * ratio, 3)
    if f.get("lining_angle") is None:
        f["lining_angle"] = _u(rng, -4.0, 4.0)
    if not f.get("lining_strength"):
        f["lining_strength"] = _u(rng, 0.2, 0.5)


# ----------------------------------------------------------------------------------------------------------
# the plate
# ----------------------------------------------------------------------------------------------------------


def _streams(seed: int) -> dict[str, np.random.Generator]:
    names = ("factors", "h", "v", "dots", "lining", "paint", "cracks", "defects", "patch", "noise")
    kids = np.random.SeedSequence([int(seed), 0xFB]).spawn(len(names))
    return {n: np.random.default_rng(k) for n, k in zip(names, kids, strict=True)}


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def _centrelines(sy: _System, along: np.ndarray, fixed: float) -> np.ndarray:
    """Positions (cm) along a line (y for "h" at x = fixed, x for "v" at y = fixed) of integer thread indices."""
    if sy.axis == "h":
        n = sy.index(np.full(along.size, fixed), along)[0]
    else:
        n = sy.index(along, np.full(along.size, fixed))[0]
    ks = np.arange(math.ceil(n[0]), math.floor(n[-1]) + 1)
    return np.interp(ks, n, along)


def make_plate(
    seed: int,
    *,
    height_cm: float = 4.0,
    width_cm: float = 4.0,
    px_per_cm: float = 200.0,
    horizontal: float | None = None,
    vertical: float | None = None,
    horizontal_angle: float | None = None,
    vertical_angle: float | None = None,
    **factors: Any,
) -> PlateB:
    """Simulate one X-ray plate. Densities in threads/cm (perpendicular), angles in degrees (CCW as displayed).

    ``None`` (or an omitted factor) is drawn from the seed using the "easy" suite's distribution; see
    :data:`FACTOR_NAMES` for all factors and :data:`PLAIN` for a clean-imaging preset. Geometry, paint,
    defects and noise use independent random streams of the seed, so changing e.g. ``paint`` keeps the canvas.
    """
    unknown = sorted(set(factors) - set(FACTOR_NAMES))
    if unknown:
        raise TypeError(f"unknown factor(s) {unknown}; known: {FACTOR_NAMES}")
    rs = _streams(seed)
    f = _draw_factors("default", rs["factors"])
    for key, val in (("horizontal", horizontal), ("vertical", vertical), ("horizontal_angle", horizontal_angle),
                     ("vertical_angle", vertical_angle)):  # fmt: skip
        if val is not None:
            f[key] = float(val)
    for key in ("lining_horizontal", "lining_vertical", "lining_angle", "lining_strength"):
        if key not in factors:
            f[key] = None if key != "lining_strength" else 0.0
    f.update({k: v for k, v in factors.items() if v is not None or k.startswith("lining_") or k == "bit_depth"})
    if f["lining"]:
        _fill_lining(rs["factors"], f)
    if f["interstice"] not in ("none", "bright", "dark"):
        raise ValueError(f"interstice must be 'none', 'bright' or 'dark', not {f['interstice']!r}")
    if f["interstice"] != "none" and not f["interstice_strength"]:
        f["interstice_strength"] = 0.8
    if f["bit_depth"] not in (None, 8, 16):
        raise ValueError("bit_depth must be None, 8 or 16")

    ppc = float(px_per_cm)
    nrow, ncol = int(round(height_cm * ppc)), int(round(width_cm * ppc))
    hcm, wcm = nrow / ppc, ncol / ppc
    xc, yc = wcm / 2, hcm / 2
    x = (np.arange(ncol) + 0.5) / ppc
    y = (np.arange(nrow) + 0.5) / ppc
    xg, yg = x[None, :], y[:, None]
    ext = 0.5 * math.hypot(wcm, hcm) + 0.3
    meta: dict[str, Any] = {"seed": int(seed), "height_cm": hcm, "width_cm": wcm, "px_per_cm": ppc}

    # ---- main weave
    hs = _make_system(rs["h"], "h", f["horizontal"], f["horizontal_angle"], xc, yc, ext, ext, f, 0)
    vs = _make_system(rs["v"], "v", f["vertical"], f["vertical_angle"], xc, yc, ext, ext, f, 1)
    _fit_density(hs, float(f["horizontal"]), xc, yc, wcm, hcm)
    _fit_density(vs, float(f["vertical"]), xc, yc, wcm, hcm)
    surf, canvas, nh, nv, depth = _weave(hs, vs, xg, yg, float(f["penetration"]))
    period_px = ppc / max(float(f["horizontal"]), float(f["vertical"]))
    geom: dict[str, Any] = {"h": hs, "v": vs}

    # ---- patch: a rectangle of another weave replacing the canvas
    ground_extra = np.zeros((nrow, ncol))
    if f["patch"]:
        rp = rs["patch"]
        pw, ph = rp.uniform(0.25, 0.5) * wcm, rp.uniform(0.25, 0.5) * hcm
        px0, py0 = rp.uniform(0.1 * wcm, 0.9 * wcm - pw), rp.uniform(0.1 * hcm, 0.9 * hcm - ph)
        j0, j1 = int(px0 * ppc), int((px0 + pw) * ppc)
        i0, i1 = int(py0 * ppc), int((py0 + ph) * ppc)
        pf = dict(f)
        pf.update(draw_yarn(rp))
        dh = float(f["horizontal"]) * (rp.uniform(0.72, 0.9) if rp.random() < 0.5 else rp.uniform(1.12, 1.35))
        dv = float(f["vertical"]) * (rp.uniform(0.72, 0.9) if rp.random() < 0.5 else rp.uniform(1.12, 1.35))
        rot = rp.uniform(-5, 5)
        pcx, pcy = (j0 + j1) / 2 / ppc, (i0 + i1) / 2 / ppc
        pext = 0.5 * math.hypot(pw, ph) + 0.3
        phs = _make_system(rp, "h", dh, f["horizontal_angle"] + rot, pcx, pcy, pext, pext, pf, 0)
        pvs = _make_system(rp, "v", dv, f["vertical_angle"] + rot, pcx, pcy, pext, pext, pf, 1)
        psurf, pcanvas, _, _, _ = _weave(phs, pvs, x[None, j0:j1], y[i0:i1, None], float(f["penetration"]))
        surf[i0:i1, j0:j1] = psurf
        canvas[i0:i1, j0:j1] = pcanvas
        ring = np.zeros((nrow, ncol))
        ring[i0:i1, j0:j1] = 1.0
        ring = ndimage.gaussian_filter(ring, 1.5) * (1 - ndimage.gaussian_filter(ring, 1.5))
        ground_extra += 4.0 * rp.uniform(0.02, 0.06) * ring / max(float(ring.max()), 1e-9)
        patch_rect = [j0 / ppc, i0 / ppc, j1 / ppc, i1 / ppc]
        geom["patch"] = {"rect": patch_rect, "h": phs, "v": pvs}
        meta["patch_rect_cm"] = [round(v, 4) for v in patch_rect]
        meta["patch_horizontal"], meta["patch_vertical"] = round(dh, 3), round(dv, 3)

    # ---- ground (fills the hollows), interstice beads
    ground = _ground(_bridge(surf, period_px), depth, period_px, f) + ground_extra
    layer_mult = np.ones((nrow, ncol))  # losses through ground and paint (cracks, tear, holes)
    paint_mult = np.ones((nrow, ncol))
    ground_mult = np.ones((nrow, ncol))
    ist, istr = str(f["interstice"]), float(f["interstice_strength"])
    if ist != "none":
        dots = _dots(rs["dots"], nh, nv, float(f["interstice_size"]))
        if ist == "bright":
            ground += istr * 2.0 * depth * dots
        else:
            hole = np.clip((dots - 0.25) / 0.35, 0.0, 1.0) * istr  # flat-bottomed hole, radius varies with amp
            ground_mult *= 1.0 - 0.95 * hole  # the ground bridged over the open interstice
            paint_mult *= 1.0 - 0.5 * hole  # paint partly sunk / worn at the pinholes
            canvas *= 1.0 - hole
    mu_g = float(f["mu_ground"])
    tau_ground_mod = float((mu_g * ground).std())

    # ---- lining canvas behind, seen through its adhesive
    tau_extra = np.zeros((nrow, ncol))
    if f["lining"]:
        rl = rs["lining"]
        ly = draw_yarn(rl)
        la = float(f["lining_angle"])
        lhs = _make_system(rl, "h", float(f["lining_horizontal"]), la, xc, yc, ext, ext, ly, 0)
        lvs = _make_system(rl, "v", float(f["lining_vertical"]), la + rl.uniform(-0.5, 0.5), xc, yc, ext, ext, ly, 1)
        lsurf, _, _, _, ldepth = _weave(lhs, lvs, xg, yg, float(ly["waviness"]) + 0.3)
        lper = ppc / max(float(f["lining_horizontal"]), float(f["lining_vertical"]))
        lg = _ground(lsurf, ldepth, lper, {"ground_mm": 0.05, "levelling": 0.2})
        lg = (lg - lg.mean()) / max(float(lg.std()), 1e-12)
        tau_extra += float(f["lining_strength"]) * tau_ground_mod * lg
        geom["lining"] = {"h": lhs, "v": lvs}
        meta["lining_yarn"] = ly

    # ---- paint
    t_lead, t_other = _paint(rs["paint"], x, y, ppc, float(f["paint"]), float(f["paint_lead"]))

    # ---- defects
    rd = rs["defects"]
    if float(f["cracks"]) > 0:
        cm = _cracks(rs["cracks"], (nrow, ncol), ppc, float(f["cracks"]), float(f["crack_cell_cm"]))
        layer_mult *= 1.0 - rd.uniform(0.5, 0.95) * cm
    if f["tear"]:
        tm, bbox = _tear(rd, (nrow, ncol), ppc)
        layer_mult *= 1.0 - 0.95 * tm
        canvas *= 1.0 - tm
        meta["tear_bbox_cm"] = [round(v, 4) for v in bbox]
    if f["stretcher"] != "none":
        edges = ["top", "bottom", "left", "right"]
        edge = _pick(rd, edges)
        bars = [edge]
        if rd.random() < 0.3:  # a crossing bar (corner)
            bars.append(_pick(rd, ["left", "right"] if edge in ("top", "bottom") else ["top", "bottom"]))
        meta["stretcher_bars"] = []
        for e in bars:
            size = hcm if e in ("top", "bottom") else wcm
            dep = rd.uniform(0.4, 0.45 * size)
            ramp = rd.uniform(0.05, 0.25)
            dist = _edge_distance(e, x, y, wcm, hcm)
            band = np.clip((dep - dist) / ramp + 0.5, 0.0, 1.0)
            band = band * band * (3 - 2 * band)
            if f["stretcher"] == "bright":
                tau_extra += MU_WOOD * rd.uniform(15, 25) * band
            else:
                layer_mult *= 1.0 - rd.uniform(0.15, 0.35) * band
                line = np.exp(-0.5 * ((dist - dep) * ppc / rd.uniform(0.7, 1.5)) ** 2)
                layer_mult *= 1.0 - 0.7 * line
            meta["stretcher_bars"].append({"edge": e, "depth_cm": round(float(dep), 4)})
    if int(f["nails"]) > 0:
        edge = _pick(rd, ["top", "bottom", "left", "right"])
        along_len = wcm if edge in ("top", "bottom") else hcm
        mw = rd.uniform(0.25, 0.6)
        dist = _edge_distance(edge, x, y, wcm, hcm)
        margin = np.clip((mw - dist) * ppc / 3.0 + 0.5, 0.0, 1.0)
        paint_mult *= 1.0 - 0.9 * margin
        ground_mult *= 1.0 - rd.uniform(0.2, 0.7) * margin
        fold = np.exp(-0.5 * ((dist - mw) * ppc / 1.5) ** 2)
        tau_extra += rd.choice([-1.0, 1.0]) * 0.15 * fold
        gap = rd.uniform(0.8, 2.5)
        pos = rd.uniform(0.2, gap)
        nails = []
        while pos < along_len - 0.1 and len(nails) < int(f["nails"]):
            off = rd.uniform(0.1, min(0.3, mw))
            r = rd.uniform(0.04, 0.09)
            if edge in ("top", "bottom"):
                nx, ny = pos, off if edge == "top" else hcm - off
            else:
                nx, ny = off if edge == "left" else wcm - off, pos
            q = ((np.abs(xg - nx) / r) ** 4 + (np.abs(yg - ny) / r) ** 4) ** 0.25
            disc = np.clip((1.0 - q) * r * ppc + 0.5, 0.0, 1.0)
            kind = "tack" if rd.random() < 0.6 else "hole"
            if kind == "tack":
                rr = np.hypot(xg - nx, yg - ny)
                tau_extra += TAU_IRON * disc + 0.5 * np.exp(-np.maximum(rr - r, 0) / 0.05) * (1 - disc)
            else:
                layer_mult *= 1.0 - disc
                canvas *= 1.0 - disc
            nails.append({"x_cm": round(float(nx), 4), "y_cm": round(float(ny), 4), "r_cm": round(float(r), 4),
                          "kind": kind})  # fmt: skip
            pos += gap * rd.uniform(0.8, 1.2)
        meta["margin"] = {"edge": edge, "width_cm": round(float(mw), 4), "nails": nails}

    # ---- attenuation and image formation
    tau = (
        MU_CANVAS * canvas
        + layer_mult * (mu_g * ground * ground_mult + paint_mult * (MU_LEAD_PAINT * t_lead + MU_OTHER_PAINT * t_other))
        + tau_extra
    )
    rn = rs["noise"]
    heel = 1.0 + float(f["heel"]) * (xg - xc) / wcm
    prim = np.exp(-(tau - float(np.median(tau)))) * heel
    expo = prim
    spr = float(f["scatter"]) + 0.4 * float(f["paint"]) ** 2  # thick lead layers scatter more
    if spr > 0:
        expo = prim + spr * _lowpass_big(prim, rn.uniform(0.3, 1.0) * ppc)
    expo = np.maximum(_mtf_blur(expo, float(f["blur_px"]), str(f["blur_kind"])), 1e-9)
    img = _develop(rn, expo, f)
    if f["bit_depth"] == 16:
        image = np.round(img * 65535.0).astype(np.uint16)
    elif f["bit_depth"] == 8:
        image = (np.round(img * 255.0) / 255.0).astype(np.float32)
    else:
        image = img.astype(np.float32)

    # ---- truth
    dh, ah = _density_angle(hs, xc, yc, wcm, hcm)
    dv, av = _density_angle(vs, xc, yc, wcm, hcm)
    step = 0.1 / ppc
    h_c = _centrelines(hs, np.arange(0.0, hcm + step / 2, step), xc)
    v_c = _centrelines(vs, np.arange(0.0, wcm + step / 2, step), yc)
    meta.update({k: f[k] for k in FACTOR_NAMES})
    meta.update({
        "horizontal_nominal": f["horizontal"], "vertical_nominal": f["vertical"],
        "horizontal_angle_nominal": f["horizontal_angle"], "vertical_angle_nominal": f["vertical_angle"],
        "horizontal_axis_count": dh * math.cos(math.radians(ah)),
        "vertical_axis_count": dv * math.cos(math.radians(av)),
        "tau_weave_std": tau_ground_mod, "tau_std": float(tau.std()),
        "octave_ratio": _octave_ratio(img, ppc, (dh, ah), (dv, av)),
    })  # fmt: skip
    return PlateB(
        image=image, px_per_cm=ppc, horizontal=dh, vertical=dv, horizontal_angle=ah, vertical_angle=av,
        h_centres_cm=h_c, v_centres_cm=v_c, meta=_jsonable(meta), geom=geom,
    )  # fmt: skip


# ----------------------------------------------------------------------------------------------------------
# truth queries
# ----------------------------------------------------------------------------------------------------------


def _system_at(plate: PlateB, direction: str, x_cm: float, y_cm: float) -> _System:
    d = {"horizontal": "h", "h": "h", "vertical": "v", "v": "v"}.get(direction)
    if d is None:
        raise ValueError(f"direction must be 'horizontal' or 'vertical', not {direction!r}")
    if not plate.geom:
        raise ValueError("plate has no geometry (was it built by make_plate in this process?)")
    patch = plate.geom.get("patch")
    if patch is not None:
        x0, y0, x1, y1 = patch["rect"]
        if x0 <= x_cm <= x1 and y0 <= y_cm <= y1:
            return patch[d]
    return plate.geom[d]


def window_truth(plate: PlateB, direction: str, x_cm: float, y_cm: float, window_cm: float) -> float:
    """True local density (threads/cm, perpendicular to the threads) in a square window centred at (x, y) cm.

    Counts centreline crossings over the window's extent along both axes (mean gradient of the continuous
    thread index; fractional crossings by interpolation between neighbouring centrelines), so the thread angle
    is accounted for. Inside a patch the patch's weave is used. ``direction``: "horizontal" or "vertical".
    """
    sy = _system_at(plate, direction, x_cm, y_cm)
    return _density_angle(sy, float(x_cm), float(y_cm), float(window_cm), float(window_cm))[0]


def window_angle(plate: PlateB, direction: str, x_cm: float, y_cm: float, window_cm: float) -> float:
    """True local thread angle (degrees, counter-clockwise as displayed) in a square window."""
    sy = _system_at(plate, direction, x_cm, y_cm)
    return _density_angle(sy, float(x_cm), float(y_cm), float(window_cm), float(window_cm))[1]


def thread_index(plate: PlateB, direction: str, x_cm: np.ndarray, y_cm: np.ndarray) -> np.ndarray:
    """Continuous index of the main weave's threads at points (cm): integer on centrelines, +0.5 midway."""
    sy = _system_at(plate, direction, -1e9, -1e9)
    return sy.index(np.asarray(x_cm, dtype=float), np.asarray(y_cm, dtype=float))[0]


# ----------------------------------------------------------------------------------------------------------
# suites, files, CLI
# ----------------------------------------------------------------------------------------------------------

_GEOMETRY_KW = ("height_cm", "width_cm", "px_per_cm")


def suite(name: str, n: int, seed0: int = 0, **kw: Any) -> list[PlateB]:
    """``n`` plates of suite ``name`` (seeds seed0 .. seed0 + n - 1); ``kw`` overrides drawn factors/geometry.

    easy: 10-25 threads/cm, angles within +-1 degree, light paint, mild grain, no defects.
    hard: 7-26 threads/cm, +-3 degrees, paint 0.2-1, cracks, grain, banding, 40 % lattices, lining, stretcher,
    nails, patches, tears, film/log/linear response, some equalised / inverted / 16-bit.
    lattice: every plate has a strong (0.7-1) bright or dark interstice lattice, 8-24 threads/cm.
    coarse: 7-10 threads/cm, heavy paint (0.75-1), strong sharp lattice (65 % dark), two-ply or rounded yarn:
    the octave trap (dark lattices put two dark features per period, so the 2f peak often beats f).
    lining: every plate relined, lining 0.55-0.8x or 1.25-1.7x the main density, strength 0.2-0.5.
    """
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; one of {SUITES}")
    geo = {k: kw[k] for k in _GEOMETRY_KW if k in kw}
    over = {k: v for k, v in kw.items() if k not in _GEOMETRY_KW}
    out = []
    for i in range(n):
        seed = seed0 + i
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        f = _draw_factors(name, rng)
        f.update(over)
        plate = make_plate(seed, **geo, **f)
        plate.meta["suite"] = name
        out.append(plate)
    return out


def write_tiff(path: str | Path, plate: PlateB) -> None:
    """Write the plate as a TIFF with resolution px_per_cm in CENTIMETER units.

    8-bit plates are stored as uint8 (``image * 255``, exact), 16-bit as uint16, unquantised ones as float32.
    """
    img = plate.image
    if img.dtype != np.uint16 and plate.meta.get("bit_depth") == 8:
        img = np.round(img.astype(np.float64) * 255.0).astype(np.uint8)
    tifffile.imwrite(
        str(path), img, resolution=(plate.px_per_cm, plate.px_per_cm), resolutionunit="CENTIMETER",
        metadata=None, description=json.dumps({"familyb": True, "seed": plate.meta.get("seed")}),
    )  # fmt: skip


def _csv_value(v: Any) -> Any:
    if isinstance(v, (list, dict)):
        return json.dumps(v, separators=(",", ":"))
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return v


def write_suite(plates: list[PlateB], out: str | Path, prefix: str = "plate") -> Path:
    """Write ``prefix-XX.tif`` files and ``truth.csv`` (file, truths, then every factor) to ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    width = max(2, len(str(len(plates) - 1)))
    first = ["file", "horizontal", "vertical", "horizontal_angle", "vertical_angle"]
    rows = []
    for i, p in enumerate(plates):
        name = f"{prefix}-{i:0{width}d}.tif"
        write_tiff(out / name, p)
        row = {"file": name, "horizontal": p.horizontal, "vertical": p.vertical,
               "horizontal_angle": p.horizontal_angle, "vertical_angle": p.vertical_angle}  # fmt: skip
        row.update({k: v for k, v in p.meta.items() if k not in row})
        rows.append(row)
    extra = sorted({k for r in rows for k in r} - set(first))
    with open(out / "truth.csv", "w", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=first + extra)
        wr.writeheader()
        for r in rows:
            wr.writerow({k: _csv_value(r.get(k)) for k in first + extra})
    return out / "truth.csv"


def main(argv: list[str] | None = None) -> int:
    """CLI: ``python benchmarks/familyb/xray.py --suite hard --n 16 --seed0 0 --out DIR``."""
    ap = argparse.ArgumentParser(description="Family B X-ray plates (measuring only).")
    ap.add_argument("--suite", default="easy", choices=SUITES)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--seed0", type=int, default=0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--px-per-cm", type=float, default=200.0)
    ap.add_argument("--size-cm", type=float, default=4.0)
    a = ap.parse_args(argv)
    t = time.perf_counter()
    plates = suite(a.suite, a.n, a.seed0, px_per_cm=a.px_per_cm, height_cm=a.size_cm, width_cm=a.size_cm)
    csv_path = write_suite(plates, a.out)
    print(f"{len(plates)} plates -> {csv_path} ({(time.perf_counter() - t) / max(len(plates), 1):.2f} s/plate)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
