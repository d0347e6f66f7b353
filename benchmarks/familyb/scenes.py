"""Family B hidden-layer scenes: underdrawings and pentimenti seen in visible RGB and in infrared.

An independent simulator, for measuring only (nothing shipped is trained or selected on it). Every scene is
built from physics that this file chooses for itself:

* **Spectra.** Each pigment has parametric absorption ``K(lambda)`` and scattering ``S(lambda)`` curves in
  1/um (per micrometre of paint film) on 400-1700 nm (``pigment_ks``). Scattering falls as a power law of the
  wavelength, so every paint gets more translucent in the infrared; absorption comes from edges and Gaussian
  bands. Carbon (lamp) black, black chalk and bone black absorb strongly at every wavelength. Lead white,
  chalk, vermilion, ultramarine, carmine lake and indigo are (nearly) non-absorbing beyond 800 nm; yellow ochre
  keeps a weak goethite band near 920 nm; raw umber keeps a broad manganese-oxide tail; azurite and malachite
  keep broad copper bands and green earth a weak iron band, so these partly absorb in the infrared.
* **Layers.** Ground (semi-infinite, ``R_inf``), underdrawing, optional imprimatura, pentimento paint, final
  paint (light/shadow mixtures, thickness per pixel), optional dark glaze, black strokes on top, varnish.
  Mixtures use Duncan's rule (K and S add with volume fractions); each film goes over what is below it with the
  two-constant Kubelka-Munk layer-over-substrate formula (``km_layer``); then an absorbing varnish, a
  Saunderson surface correction, dirt-filled craquelure and surface-relief shading.
* **Cameras.** Visible: Gaussian-ish RGB sensitivities under a 6500 K Planck (D65-like) illuminant,
  white-balanced on a perfect diffuser, blur, signal-dependent noise, sRGB-like gamma, 8-bit steps. Infrared:
  InGaAs (900-1700 nm) or silicon behind a 780 nm long-pass (780-1000 nm), halogen (3000 K Planck) light,
  linear output, a larger blur, more noise (and column fixed-pattern noise for InGaAs), lamp fall-off, and a
  small misregistration (shift up to 1.5 px, rotation up to 0.25 degrees, scale within 0.5 %).

**Kinds.** ``lines``: the figures' contours re-drawn slightly off the painted outline and broken into arcs, free
lines (folds, features) and hatching patches (parallel strokes 3.5-7 px apart, sometimes crossed), 1-3 px wide, in
carbon ink, grainy black chalk or bone black. ``shapes``: 1-3 filled pentimenti (blob, ellipse, polygon,
rectangle; 10-35 um of an IR-absorbing paint) painted over by the final composition. ``mixed``: both (1-2 shapes).
**Decoys** (never in the mask): black strokes on top (bone black + umber, 1-6 px, some along figure outlines),
IR-transparent dark glazes (carmine lake + indigo), IR-absorbing final paints (azurite, copper greens, umber,
bone-black greys and shadows), paint-thickness and brush-streak variation, relief shading and canvas weave,
dirt-filled craquelure, varnish yellowing, lamp fall-off in the IR.

**Mask rule** (visible frame). The picture is rendered twice, with and without the underdrawing and pentimenti
(only hidden pixels differ); both noise-free versions go through each camera's blur, but not its misregistration,
noise or quantisation. A pixel is in the mask when

1. hidden content is present there: underdrawing-line coverage >= 0.5 or pentimento-shape coverage >= 0.5;
2. the infrared reveals it: the hidden layers darken the blurred IR image there by >= ``TAU_IR`` (6 %) relative
   to the blurred IR image without them;
3. the visible does not show it: the largest per-channel change of the blurred display (gamma-encoded) RGB caused
   by the hidden layers is <= ``TAU_VIS`` (0.025, about 6/255);
4. no black decoy stroke painted on top touches the pixel (anti-aliased coverage > 0.02) and no craquelure
   (crack strength >= 0.2) crosses it: there the pixel is ambiguous.

Pixels under an IR-transparent dark glaze stay in the mask when rules 1-4 hold (the IR sees through the glaze).
Line widths, hatching spacing and stroke widths are in pixels whatever ``size`` is (chosen for 384 px).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw
from scipy import fft as sp_fft
from scipy import ndimage
from scipy.spatial import cKDTree

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]

KINDS = ("lines", "shapes", "mixed")
_KIND_CODES = {"lines": 11, "shapes": 23, "mixed": 37}

TAU_IR = 0.06  # relative darkening of the (blurred, noise-free) IR image by the hidden layers for "revealed"
TAU_VIS = 0.025  # largest change of display RGB (0-1 units) still counted as "not shown in the visible"
TOP_EXCLUDE = 0.02  # top-stroke coverage above which a pixel is excluded from the mask
CRACK_EXCLUDE = 0.2  # crack strength above which a pixel is excluded from the mask
_USE_LUT = True  # look-up tables for plain paint pixels (False: full spectral render everywhere, for checks)

LAM_VIS = np.arange(400.0, 701.0, 20.0)  # nm, visible sampling for the RGB camera
IR_BANDS: dict[str, dict[str, Any]] = {
    "ingaas": {"range_nm": (900.0, 1700.0), "step_nm": 50.0, "illuminant_K": 3000.0},
    "silicon": {"range_nm": (780.0, 1000.0), "step_nm": 20.0, "illuminant_K": 3000.0},
}


# ----------------------------------------------------------------------------------------------- spectra


def _edge(lam: F64, lam0: float, width: float) -> F64:
    """Smooth step that is 1 well below ``lam0`` nm and 0 well above (width in nm)."""
    return 1.0 / (1.0 + np.exp((lam - lam0) / width))


def _band(lam: F64, mu: float, sigma: float) -> F64:
    """Gaussian absorption band centred at ``mu`` nm with standard deviation ``sigma`` nm (peak 1)."""
    return np.exp(-0.5 * ((lam - mu) / sigma) ** 2)


def _pw(lam: F64, p: float) -> F64:
    """Power law ``(lambda / 550 nm) ** -p`` used for scattering (and the slow black-pigment absorption)."""
    return (lam / 550.0) ** (-p)


# name -> (K(lambda), S(lambda)), both in 1/um of film at a typical pigment volume concentration.
_PIGMENTS: dict[str, tuple[Callable[[F64], F64], Callable[[F64], F64]]] = {
    "lead_white": (lambda x: 0.0015 + 0.04 * _edge(x, 425, 10), lambda x: 0.3 * _pw(x, 2.2)),
    "chalk": (lambda x: 0.0012 + 0.02 * _edge(x, 410, 15), lambda x: 0.5 * _pw(x, 0.8)),
    "gypsum": (lambda x: 0.0016 + 0.012 * _edge(x, 420, 20) + 0.004 * _band(x, 1450, 40), lambda x: 0.45 * _pw(x, 0.8)),
    "vermilion": (lambda x: 0.003 + 1.2 * _edge(x, 592, 9), lambda x: 0.3 * _pw(x, 2.0)),
    "yellow_ochre": (
        lambda x: 0.004 + 0.45 * _edge(x, 510, 22) + 0.012 * _band(x, 920, 90),
        lambda x: 0.12 * _pw(x, 1.6),
    ),
    "ultramarine": (lambda x: 0.004 + 0.55 * _band(x, 600, 55), lambda x: 0.05 * _pw(x, 2.0)),
    "azurite": (
        lambda x: 0.006 + 0.35 * _band(x, 640, 70) + 0.05 * _band(x, 950, 400) + 0.02 * _band(x, 1495, 30),
        lambda x: 0.08 * _pw(x, 1.0),
    ),
    "malachite": (
        lambda x: 0.005 + 0.30 * _band(x, 430, 45) + 0.35 * _band(x, 680, 80) + 0.025 * _band(x, 950, 250),
        lambda x: 0.08 * _pw(x, 1.0),
    ),
    "green_earth": (
        lambda x: 0.01 + 0.12 * _band(x, 440, 50) + 0.10 * _band(x, 680, 90) + 0.015 * _band(x, 1050, 250),
        lambda x: 0.04 * _pw(x, 1.2),
    ),
    "carmine_lake": (
        lambda x: 0.002 + 0.8 * _band(x, 530, 30) + 0.5 * _band(x, 565, 22) + 0.2 * _edge(x, 430, 20),
        lambda x: 0.015 * _pw(x, 1.5),
    ),
    "indigo": (
        lambda x: 0.002 + 1.1 * _band(x, 620, 55) + 0.35 * _band(x, 540, 50) + 0.2 * _edge(x, 440, 15),
        lambda x: 0.02 * _pw(x, 1.5),
    ),
    "raw_umber": (
        lambda x: 0.01 + 0.5 * _edge(x, 560, 70) + 0.04 * _pw(x, 1.0),
        lambda x: 0.1 * _pw(x, 1.4),
    ),
    "bone_black": (lambda x: 0.45 * _pw(x, 0.25), lambda x: 0.04 * _pw(x, 1.0)),
    "carbon_black": (lambda x: 1.0 * _pw(x, 0.15), lambda x: 0.02 * _pw(x, 1.0)),
    "black_chalk": (lambda x: 0.5 * _pw(x, 0.2), lambda x: 0.08 * _pw(x, 1.0)),
}
PIGMENTS = tuple(_PIGMENTS)


def pigment_ks(name: str, lam: Sequence[float] | F64) -> tuple[F64, F64]:
    """Kubelka-Munk ``(K, S)`` of one pigment in 1/um at wavelengths ``lam`` (nm, 400-1700)."""
    x = np.asarray(lam, dtype=np.float64)
    k_fn, s_fn = _PIGMENTS[name]
    return np.broadcast_to(k_fn(x), x.shape).copy(), np.broadcast_to(s_fn(x), x.shape).copy()


def mixture_ks(recipe: dict[str, float], lam: Sequence[float] | F64) -> tuple[F64, F64]:
    """Duncan mixing: ``K = sum c_i K_i``, ``S = sum c_i S_i`` with volume fractions normalised to 1 (1/um)."""
    total = float(sum(recipe.values()))
    x = np.asarray(lam, dtype=np.float64)
    k = np.zeros_like(x)
    s = np.zeros_like(x)
    for name, c in recipe.items():
        kp, sp = pigment_ks(name, x)
        k += c / total * kp
        s += c / total * sp
    return k, s


def r_infinity(k: F64, s: F64) -> F64:
    """Reflectance of an opaque (infinitely thick) film: ``1 + K/S - sqrt((K/S)^2 + 2 K/S)``."""
    q = k / np.maximum(s, 1e-6)
    return 1.0 + q - np.sqrt(q * q + 2.0 * q)


def km_layer(rg: NDArray[np.floating], k: NDArray[np.floating], s: NDArray[np.floating],
             x: NDArray[np.floating] | float) -> NDArray[np.floating]:
    """Kubelka-Munk reflectance of a film of thickness ``x`` (um) over a substrate of reflectance ``rg``.

    ``R = (1 - Rg (a - b coth(bSX))) / (a - Rg + b coth(bSX))`` with ``a = 1 + K/S``, ``b = sqrt(a^2 - 1)``.
    ``rg`` is ``(n, L)``; ``k``, ``s`` (1/um) are ``(L,)`` or ``(n, L)``; ``x`` is a scalar or ``(n,)``.
    """
    s = np.maximum(s, 1e-4)
    k = np.maximum(k, 1e-6)
    q = k / s
    a = 1.0 + q
    b = np.sqrt(q * (q + 2.0))
    xx = np.asarray(x, dtype=rg.dtype)
    if xx.ndim == 1:
        xx = xx[:, None]
    e = np.exp(-2.0 * np.maximum(b * s * xx, 1e-4))
    bc = b * (1.0 + e) / (1.0 - e)
    return (1.0 - rg * (a - bc)) / (a - rg + bc)


# -------------------------------------------------------------------------------------------- paints


# Final paints: (light mixture, shadow mixture); the per-pixel shading field blends the two.
PAINTS: dict[str, tuple[dict[str, float], dict[str, float]]] = {
    "sky_blue": ({"lead_white": 0.85, "ultramarine": 0.15}, {"lead_white": 0.55, "ultramarine": 0.40, "azurite": 0.05}),
    "azurite_robe": ({"azurite": 0.55, "lead_white": 0.45}, {"azurite": 0.85, "indigo": 0.05, "lead_white": 0.10}),
    "red_robe": ({"vermilion": 0.55, "lead_white": 0.45}, {"vermilion": 0.55, "carmine_lake": 0.45}),
    "red_robe_black": ({"vermilion": 0.6, "lead_white": 0.4},
                       {"vermilion": 0.7, "bone_black": 0.08, "carmine_lake": 0.22}),
    "flesh": ({"lead_white": 0.86, "vermilion": 0.07, "yellow_ochre": 0.07},
              {"lead_white": 0.55, "yellow_ochre": 0.22, "vermilion": 0.10, "raw_umber": 0.13}),
    "green_meadow": ({"malachite": 0.45, "yellow_ochre": 0.25, "lead_white": 0.30},
                     {"green_earth": 0.60, "raw_umber": 0.25, "malachite": 0.15}),
    "ochre_earth": ({"yellow_ochre": 0.55, "lead_white": 0.45}, {"yellow_ochre": 0.5, "raw_umber": 0.5}),
    "grey_stone": ({"lead_white": 0.94, "bone_black": 0.06},
                   {"lead_white": 0.76, "bone_black": 0.16, "raw_umber": 0.08}),
    "pale_drapery": ({"lead_white": 0.95, "yellow_ochre": 0.05},
                     {"lead_white": 0.75, "yellow_ochre": 0.15, "ultramarine": 0.10}),
    "dark_ground": ({"raw_umber": 0.6, "yellow_ochre": 0.3, "lead_white": 0.1}, {"raw_umber": 0.7, "bone_black": 0.3}),
}
_SKY_PAINTS = ("sky_blue", "sky_blue", "sky_blue", "pale_drapery", "ochre_earth", "grey_stone")
_LAND_PAINTS = ("green_meadow", "ochre_earth", "ochre_earth", "green_meadow", "pale_drapery", "dark_ground")
_FIGURE_PAINTS = ("flesh", "red_robe", "red_robe_black", "azurite_robe", "pale_drapery", "green_meadow", "sky_blue")

# Earlier (abandoned) compositions: paints that absorb in the infrared.
PENTIMENTO_PAINTS: dict[str, dict[str, float]] = {
    "umber_black": {"raw_umber": 0.5, "bone_black": 0.3, "lead_white": 0.2},
    "black_grey": {"lead_white": 0.6, "bone_black": 0.4},
    "azurite_black": {"azurite": 0.85, "bone_black": 0.15},
    "carbon_dead_colour": {"carbon_black": 0.3, "lead_white": 0.5, "yellow_ochre": 0.2},
    "earth_black": {"raw_umber": 0.7, "carbon_black": 0.1, "yellow_ochre": 0.2},
}
# Underdrawing media: pigment, film thickness range (um) of a full-pressure stroke, grainy or not.
UNDERDRAWING_MEDIA: dict[str, tuple[str, tuple[float, float], bool]] = {
    "carbon_ink_brush": ("carbon_black", (1.0, 2.5), False),
    "black_chalk": ("black_chalk", (2.0, 4.5), True),
    "bone_black_brush": ("bone_black", (2.5, 5.0), False),
}
GROUNDS: dict[str, dict[str, float]] = {
    "chalk_glue": {"chalk": 1.0},
    "gypsum_glue": {"gypsum": 1.0},
    "lead_white_oil": {"lead_white": 0.9, "yellow_ochre": 0.02, "chalk": 0.08},
}
TOP_STROKE_PAINT = {"bone_black": 0.75, "raw_umber": 0.25}  # dark in visible and IR
GLAZE_PAINTS: dict[str, dict[str, float]] = {  # dark in visible, transparent in IR
    "carmine_indigo": {"carmine_lake": 0.6, "indigo": 0.4},
    "indigo_glaze": {"indigo": 0.8, "carmine_lake": 0.2},
}
IMPRIMATURA = {"lead_white": 0.5, "yellow_ochre": 0.35, "raw_umber": 0.15}


# ------------------------------------------------------------------------------------------- cameras


def _sigmoid(z: F64) -> F64:
    return 1.0 / (1.0 + np.exp(-z))


def planck(lam_nm: F64, temperature_k: float) -> F64:
    """Relative black-body spectral radiance at ``lam_nm`` (nm) for a temperature in kelvin (peak-free units)."""
    lam = lam_nm * 1e-9
    return 1.0 / (lam**5 * np.expm1(1.438777e-2 / (lam * temperature_k)))


def rgb_sensitivities(lam: F64) -> F64:
    """Relative RGB camera sensitivities ``(L, 3)`` (Gaussian-ish; red has a small blue lobe)."""
    r = _band(lam, 600, 38) + 0.12 * _band(lam, 445, 25)
    g = _band(lam, 538, 40)
    b = _band(lam, 455, 28)
    return np.stack([r, g, b], axis=1)


def ir_response(lam: F64, band: str) -> F64:
    """Relative response of the IR camera: InGaAs (900-1700 nm) or silicon behind a 780 nm long-pass filter."""
    if band == "ingaas":
        return _sigmoid((lam - 930.0) / 15.0) * _sigmoid((1660.0 - lam) / 20.0) * (0.7 + 0.3 * (lam - 900.0) / 800.0)
    if band == "silicon":
        return _sigmoid((lam - 790.0) / 8.0) * np.clip((1100.0 - lam) / 400.0, 0.0, None)
    raise ValueError(f"unknown IR band {band!r}; expected one of {sorted(IR_BANDS)}")


def ir_wavelengths(band: str) -> F64:
    """Wavelength samples (nm) used to integrate the IR camera of ``band``."""
    lo, hi = IR_BANDS[band]["range_nm"]
    return np.arange(lo, hi + 0.5, IR_BANDS[band]["step_nm"])


def srgb_encode(x: NDArray[np.floating]) -> NDArray[np.floating]:
    """sRGB-like transfer curve (linear 0-1 to display 0-1)."""
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1.0 / 2.4) - 0.055)


# ------------------------------------------------------------------------------------- random fields


def _smooth_noise(rng: np.random.Generator, size: int, sigma: float | tuple[float, float],
                  angle: float = 0.0) -> F32:
    """Gaussian-filtered white noise (periodic, via FFT), unit standard deviation; sigma in px (along, across)."""
    white = rng.standard_normal((size, size), dtype=np.float32)
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    su, sv = (sigma, sigma) if np.isscalar(sigma) else sigma  # type: ignore[misc]
    c, s = math.cos(angle), math.sin(angle)
    fu = fx * c + fy * s
    fv = -fx * s + fy * c
    gain = np.exp(-2.0 * math.pi**2 * ((fu * su) ** 2 + (fv * sv) ** 2))
    out = sp_fft.irfft2(sp_fft.rfft2(white) * gain.astype(np.float32), s=(size, size))
    out -= out.mean()
    out /= out.std() + 1e-12
    return out.astype(np.float32)


def _poly_coverage(size: int, polygon: NDArray[np.floating], ss: int = 4) -> F32:
    """Anti-aliased coverage (0-1) of a polygon given as ``(M, 2)`` (x, y) pixel-centre coordinates."""
    out = np.zeros((size, size), np.float32)
    x0, y0 = np.clip(np.floor(polygon.min(axis=0)).astype(int) - 1, 0, size)
    x1, y1 = np.clip(np.ceil(polygon.max(axis=0)).astype(int) + 2, 0, size)
    if x1 <= x0 or y1 <= y0:
        return out
    img = Image.new("L", ((x1 - x0) * ss, (y1 - y0) * ss), 0)
    pts = [(float((x - x0 + 0.5) * ss - 0.5), float((y - y0 + 0.5) * ss - 0.5)) for x, y in polygon]
    ImageDraw.Draw(img).polygon(pts, fill=255)
    arr = np.asarray(img, dtype=np.uint16).reshape(y1 - y0, ss, x1 - x0, ss).sum(axis=(1, 3), dtype=np.uint32)
    out[y0:y1, x0:x1] = arr / (255.0 * ss * ss)
    return out


def _blob(cx: float, cy: float, rx: float, ry: float, rot: float, coeffs: F64, phases: F64,
          n: int = 256) -> F64:
    """Closed noisy-ellipse outline ``(n, 2)`` (x, y): radius modulated by low harmonics ``coeffs``."""
    phi = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    mod = np.ones_like(phi)
    for h, (a, p) in enumerate(zip(coeffs, phases, strict=True), start=2):
        mod += a * np.cos(h * phi + p)
    x = rx * mod * np.cos(phi)
    y = ry * mod * np.sin(phi)
    c, s = math.cos(rot), math.sin(rot)
    return np.stack([cx + c * x - s * y, cy + s * x + c * y], axis=1)


def _resample(poly: F64, step: float = 0.3, closed: bool = False) -> F64:
    """Resample a polyline ``(M, 2)`` at ``step`` px spacing along its length."""
    if closed:
        poly = np.vstack([poly, poly[:1]])
    seg = np.hypot(*np.diff(poly, axis=0).T)
    t = np.concatenate([[0.0], np.cumsum(seg)])
    n = max(int(t[-1] / step), 2)
    u = np.linspace(0.0, t[-1], n)
    return np.stack([np.interp(u, t, poly[:, 0]), np.interp(u, t, poly[:, 1])], axis=1)


def _walk(rng: np.random.Generator, x0: float, y0: float, heading: float, length: float,
          curvature: float, step: float = 0.3) -> F64:
    """A smooth random curve of ``length`` px from (x0, y0); curvature scale in rad/px."""
    n = max(int(length / step), 3)
    knots = rng.normal(0.0, curvature, 4)
    kappa = np.interp(np.linspace(0, 3, n), np.arange(4), knots)
    h = heading + np.cumsum(kappa) * step
    return np.stack([x0 + np.cumsum(np.cos(h)) * step, y0 + np.cumsum(np.sin(h)) * step], axis=1)


@dataclass
class _Strokes:
    """Dense samples of stroked curves: position (x, y px), full width (px) and pressure (0-1) per sample."""

    xy: list[F64] = field(default_factory=list)
    width: list[F64] = field(default_factory=list)
    pressure: list[F64] = field(default_factory=list)

    def add(self, rng: np.random.Generator, pts: F64, width: float, pressure: float, taper_px: float = 3.0) -> None:
        """Add one stroke along ``pts`` (px): full ``width`` (px) and ``pressure`` (0-1), both tapering at the ends."""
        arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(pts, axis=0).T))]) if len(pts) > 1 else np.zeros(1)
        ends = np.minimum(arc, arc[-1] - arc) / max(taper_px, 1e-3)
        taper = np.clip(0.35 + 0.65 * ends, 0.35, 1.0)
        wobble = 1.0 + 0.15 * np.interp(arc, np.linspace(0, arc[-1] + 1e-9, 5), rng.uniform(-1, 1, 5))
        self.xy.append(pts)
        self.width.append(np.maximum(width * wobble * np.sqrt(taper), 0.8))
        self.pressure.append(np.clip(pressure * taper * wobble, 0.0, 1.0))

    def rasterise(self, size: int) -> tuple[F32, F32]:
        """Coverage (0-1, anti-aliased by distance) and pressure maps from the nearest stroke sample."""
        cov = np.zeros(size * size, np.float32)
        prs = np.zeros(size * size, np.float32)
        if not self.xy:
            return cov.reshape(size, size), prs.reshape(size, size)
        xy = np.vstack(self.xy)
        w = np.concatenate(self.width)
        p = np.concatenate(self.pressure)
        keep = (xy[:, 0] > -5) & (xy[:, 0] < size + 5) & (xy[:, 1] > -5) & (xy[:, 1] < size + 5)
        xy, w, p = xy[keep], w[keep], p[keep]
        if len(xy) == 0:
            return cov.reshape(size, size), prs.reshape(size, size)
        tree = cKDTree(xy)
        reach = float(w.max()) / 2.0 + 0.75
        near = np.zeros((size, size), bool)
        ij = np.clip(np.round(xy).astype(int), 0, size - 1)
        near[ij[:, 1], ij[:, 0]] = True
        near = ndimage.binary_dilation(near, np.ones((3, 3), bool), iterations=int(math.ceil(reach)))
        cand = np.flatnonzero(near)
        q = np.stack([cand % size, cand // size], axis=1).astype(np.float64)
        d, i = tree.query(q, distance_upper_bound=reach)
        ok = np.isfinite(d)
        flat = cand[ok]
        c = np.clip(w[i[ok]] / 2.0 + 0.5 - d[ok], 0.0, 1.0)
        cov[flat] = c
        prs[flat] = p[i[ok]]
        return cov.reshape(size, size), prs.reshape(size, size)


def _craquelure(rng: np.random.Generator, size: int, cell: float, half_width: float, coverage: float) -> F32:
    """Dirt-filled crack network (0-1 strength, 1-2 px wide): warped Voronoi cell borders of jittered seeds.

    ``cell`` is the mean island size (px), ``half_width`` (0.3-0.7 px) widens the soft halo, ``coverage`` is the
    fraction of the picture where cracks have opened; about a quarter of the borders stay closed.
    """
    pad = int(math.ceil(cell)) + 2
    big = size + 2 * pad
    n = int(math.ceil(big / cell)) + 1
    gy, gx = np.mgrid[0:n, 0:n].astype(np.float64)
    pos = (np.stack([gx.ravel(), gy.ravel()], axis=1) + rng.uniform(0.15, 0.85, (n * n, 2))) * cell
    pos = np.clip(np.round(pos).astype(int), 0, big - 1)
    ids = np.full((big, big), -1, np.int64)
    ids[pos[:, 1], pos[:, 0]] = np.arange(len(pos))
    _, (iy, ix) = ndimage.distance_transform_edt(ids < 0, return_indices=True)
    labels = ids[iy, ix].astype(np.float64)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    warp = 0.1 * cell
    coords = [yy + pad + warp * _smooth_noise(rng, size, cell / 3.0),
              xx + pad + warp * _smooth_noise(rng, size, cell / 3.0)]
    lab = ndimage.map_coordinates(labels, coords, order=0, mode="nearest")
    border = np.zeros((size, size), np.float32)
    for axis in (0, 1):
        nb = np.roll(lab, -1, axis=axis)
        lo, hi = np.minimum(lab, nb), np.maximum(lab, nb)
        strength = (np.sin(lo * 12.9898 + hi * 78.233) * 43758.5453) % 1.0  # per-border hash in [0, 1)
        edge = (lab != nb) & (strength < 0.75)
        if axis == 0:
            edge[-1, :] = False
        else:
            edge[:, -1] = False
        border = np.maximum(border, edge * (0.6 + 0.4 * strength).astype(np.float32))
    region = _smooth_noise(rng, size, size / 5.0)
    border *= region > np.quantile(region, 1.0 - coverage)
    halo = ndimage.gaussian_filter(border, 0.7) * (2.0 * half_width + 0.6)
    return np.clip(np.maximum(border, halo), 0.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------------------------------------- scene


@dataclass
class SceneB:
    """One simulated painting seen by a visible and an infrared camera.

    ``visible_rgb`` (H, W, 3) float32 display values in [0, 1] (8-bit steps); ``ir`` (H, W) float32 in [0, 1]
    (16-bit steps), linear, hidden content dark, in the IR camera's own (slightly misregistered) frame;
    ``mask`` (H, W) bool, hidden content revealed by IR, in the visible frame (rule in the module docstring);
    ``kind`` one of ``KINDS``; ``meta`` every drawn factor (JSON-serialisable); ``layers`` (extra, not part of
    the exchange format) float32 truth maps in the visible frame: ``underdrawing``, ``pentimento``,
    ``top_strokes``, ``glaze`` coverages (0-1), ``craquelure`` strength (0-1), and ``ir_drop`` (relative
    darkening of the blurred, noise-free IR) / ``vis_drop`` (largest blurred display-RGB change, 0-1) caused by
    the hidden layers.
    """

    visible_rgb: np.ndarray
    ir: np.ndarray
    mask: np.ndarray
    kind: str
    meta: dict
    layers: dict[str, np.ndarray] = field(default_factory=dict)


_FACTOR_NAMES = (
    "ir_band", "shift", "rotation_deg", "scale", "craquelure", "n_top_strokes", "n_glaze", "varnish",
    "noise", "vis_blur", "ir_blur", "line_width", "imprimatura", "hidden",
)


def _py(obj: Any) -> Any:
    """Convert numpy scalars/arrays (recursively) to plain JSON-serialisable Python objects."""
    if isinstance(obj, dict):
        return {str(k): _py(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_py(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _py(obj.tolist())
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating | float):
        return round(float(obj), 6)
    return obj


def make_scene(seed: int, kind: str = "lines", size: int = 384, **factors: Any) -> SceneB:
    """Simulate one scene; deterministic in ``(seed, kind, size, factors)``.

    ``kind``: ``"lines"`` (underdrawn contours, free lines and hatching, 1-3 px wide), ``"shapes"`` (filled
    pentimenti in an IR-absorbing paint) or ``"mixed"`` (both). ``size`` in px (square). Optional ``factors``
    override drawn values without changing any other draw: ``ir_band`` ("ingaas" | "silicon"), ``shift``
    ((dx, dy) px of the IR frame), ``rotation_deg``, ``scale``, ``craquelure`` (bool), ``n_top_strokes``,
    ``n_glaze``, ``varnish`` (bool), ``noise`` (multiplier of both cameras' noise), ``vis_blur`` / ``ir_blur``
    (Gaussian sigma px), ``line_width`` ((lo, hi) px of underdrawn lines), ``imprimatura`` (bool), ``hidden``
    (bool, default True; False paints the same picture without its underdrawing and pentimenti, with identical
    noise: a control whose mask is empty).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    unknown = set(factors) - set(_FACTOR_NAMES)
    if unknown:
        raise ValueError(f"unknown factors {sorted(unknown)}; known: {list(_FACTOR_NAMES)}")
    if size < 32:
        raise ValueError("size must be >= 32 px")
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence([int(seed), _KIND_CODES[kind]]).spawn(9)]
    r_lay, r_lines, r_shapes, r_decoy, r_cam, r_noise, r_tex, r_crack, r_glaze = rngs
    size = int(size)
    n_pix = size * size
    meta: dict[str, Any] = {"seed": int(seed), "kind": kind, "size": size, "simulator": "familyb.scenes v1"}

    # ---------------------------------------------------------------- camera factors (drawn first, fixed order)
    cam = {
        "ir_band": "ingaas" if r_cam.random() < 0.6 else "silicon",
        "shift_mag": r_cam.uniform(0.2, 1.5),
        "shift_angle": r_cam.uniform(0, 2 * math.pi),
        "rotation_deg": r_cam.uniform(-0.25, 0.25),
        "scale": 1.0 + r_cam.uniform(-0.005, 0.005),
        "vis_blur": r_cam.uniform(0.35, 0.8),
        "ir_blur_u": r_cam.uniform(0, 1),
        "vis_exposure": r_cam.uniform(0.85, 1.05),
        "ir_exposure": r_cam.uniform(0.9, 1.15),
        "ir_offset": r_cam.uniform(0.0, 0.03),
        "vis_read_noise": r_cam.uniform(0.001, 0.004),
        "vis_shot": r_cam.uniform(5e-6, 5e-5),
        "ir_noise_u": r_cam.uniform(0, 1),
        "ir_vignette": r_cam.uniform(0.0, 0.08),
        "ir_gradient": r_cam.uniform(-0.03, 0.03),
        "ir_gradient_angle": r_cam.uniform(0, 2 * math.pi),
    }
    band = str(factors.get("ir_band", cam["ir_band"]))
    if band not in IR_BANDS:
        raise ValueError(f"ir_band must be one of {sorted(IR_BANDS)}")
    shift = factors.get("shift", (cam["shift_mag"] * math.cos(cam["shift_angle"]),
                                  cam["shift_mag"] * math.sin(cam["shift_angle"])))
    shift = (float(shift[0]), float(shift[1]))
    rot_deg = float(factors.get("rotation_deg", cam["rotation_deg"]))
    scale = float(factors.get("scale", cam["scale"]))
    noise_mult = float(factors.get("noise", 1.0))
    vis_blur = float(factors.get("vis_blur", cam["vis_blur"]))
    ir_blur = float(factors.get("ir_blur", (0.7 + 0.6 * cam["ir_blur_u"]) if band == "ingaas"
                                else (0.5 + 0.4 * cam["ir_blur_u"])))
    ir_read = (0.003 + 0.006 * cam["ir_noise_u"]) if band == "ingaas" else (0.002 + 0.004 * cam["ir_noise_u"])

    lam_ir = ir_wavelengths(band)
    lam = np.concatenate([LAM_VIS, lam_ir])
    n_vis = len(LAM_VIS)

    # ---------------------------------------------------------------- materials
    ground_name = str(r_lay.choice(list(GROUNDS)))
    k_gr, s_gr = mixture_ks(GROUNDS[ground_name], lam)
    rg = r_infinity(k_gr, s_gr).astype(np.float32)
    medium = str(r_lines.choice(list(UNDERDRAWING_MEDIA)))
    ud_pigment, ud_range, ud_grainy = UNDERDRAWING_MEDIA[medium]
    ud_thickness = float(r_lines.uniform(*ud_range))
    k_ud, s_ud = (a.astype(np.float32) for a in pigment_ks(ud_pigment, lam))
    use_imprimatura = bool(factors.get("imprimatura", r_lay.random() < 0.3))
    imp_thickness = float(r_lay.uniform(3.0, 8.0))
    k_imp, s_imp = (a.astype(np.float32) for a in mixture_ks(IMPRIMATURA, lam))

    # ---------------------------------------------------------------- composition: regions and their paints
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    horizon_y = r_lay.uniform(0.3, 0.6) * size
    hx = np.linspace(-2, size + 2, 64)
    hy = horizon_y + size * 0.04 * np.sin(hx / size * r_lay.uniform(2, 6) + r_lay.uniform(0, 6)) \
        + size * 0.015 * r_lay.standard_normal(64).cumsum() / 4
    land_poly = np.vstack([np.stack([hx, hy], 1), [[size + 2, size + 2], [-2, size + 2]]])
    land = _poly_coverage(size, land_poly)
    sky_paint = str(r_lay.choice(_SKY_PAINTS))
    land_paint = str(r_lay.choice(_LAND_PAINTS))
    region_paints = [sky_paint, land_paint]
    region_thick = [float(r_lay.uniform(12, 35)), float(r_lay.uniform(12, 40))]
    weights = [1.0 - land, land]
    figures: list[dict[str, Any]] = []
    fig_outlines: list[F64] = []
    n_fig = int(r_lay.integers(2, 5))
    for _ in range(n_fig):
        params = {
            "cx": r_lay.uniform(0.2, 0.8) * size, "cy": r_lay.uniform(0.3, 0.8) * size,
            "rx": r_lay.uniform(0.09, 0.2) * size, "ry": r_lay.uniform(0.14, 0.3) * size,
            "rot": r_lay.uniform(-0.6, 0.6),
            "coeffs": r_lay.uniform(0.0, 0.1, 4) / np.arange(1, 5), "phases": r_lay.uniform(0, 2 * math.pi, 4),
        }
        outline = _blob(params["cx"], params["cy"], params["rx"], params["ry"], params["rot"],
                        params["coeffs"], params["phases"])
        cov = _poly_coverage(size, outline)
        paint = str(r_lay.choice(_FIGURE_PAINTS))
        thick = float(r_lay.uniform(12, 40))
        weights = [w * (1.0 - cov) for w in weights] + [cov]
        region_paints.append(paint)
        region_thick.append(thick)
        figures.append({"paint": paint, "thickness_um": thick, "cx": params["cx"], "cy": params["cy"],
                        "rx": params["rx"], "ry": params["ry"], "rot": params["rot"], "_p": params})
        fig_outlines.append(outline)
    w_reg = np.stack([w.ravel() for w in weights], axis=1)  # (N, R)
    fig_any = np.clip(sum(w for w in weights[2:]), 0, 1) if n_fig else np.zeros((size, size), np.float32)

    # shading (0 light .. 1 shadow): smooth noise + drapery folds inside figures
    fold_period = r_tex.uniform(20, 60)
    fold_angle = r_tex.uniform(0, math.pi)
    folds = np.sin(2 * math.pi * (xx * math.cos(fold_angle) + yy * math.sin(fold_angle)) / fold_period
                   + 2.0 * _smooth_noise(r_tex, size, size / 10))
    fold_amp = 0.15 * np.clip(0.6 + 0.5 * _smooth_noise(r_tex, size, size / 8), 0.0, 1.0)
    shade_t = np.clip(0.4 + 0.2 * _smooth_noise(r_tex, size, size / 12) + fold_amp * folds * fig_any, 0.0, 1.0)
    mix_k, mix_s = [], []
    for p in region_paints:
        for recipe in PAINTS[p]:
            k, s = mixture_ks(recipe, lam)
            mix_k.append(k)
            mix_s.append(s)
    kmix = np.asarray(mix_k, np.float32)  # (2R, L)
    smix = np.asarray(mix_s, np.float32)
    st = shade_t.ravel()[:, None]
    w_full = np.empty((n_pix, 2 * w_reg.shape[1]), np.float32)
    w_full[:, 0::2] = w_reg * (1.0 - st)
    w_full[:, 1::2] = w_reg * st
    brush_angle = r_tex.uniform(0, math.pi)
    streaks = _smooth_noise(r_tex, size, (6.0, 0.8), angle=brush_angle)
    t_paint = (w_reg @ np.asarray(region_thick, np.float32)).reshape(size, size)
    t_paint = t_paint * (1.0 + 0.15 * _smooth_noise(r_tex, size, size / 16)) * (1.0 + 0.05 * streaks)
    t_paint = np.maximum(t_paint, 8.0).astype(np.float32)

    # ---------------------------------------------------------------- hidden content
    ud = _Strokes()
    lines_meta: dict[str, Any] = {}
    lw_lo, lw_hi = factors.get("line_width", (1.0, 3.0))
    if kind in ("lines", "mixed"):
        n_contours = n_hatch_sets = n_free = 0
        widths: list[float] = []
        for outline_fig in figures:
            if r_lines.random() > 0.9:
                continue
            p = outline_fig["_p"]
            dx, dy = r_lines.normal(0, 3.0, 2)
            ol = _blob(p["cx"] + dx, p["cy"] + dy, p["rx"] * r_lines.uniform(0.95, 1.05),
                       p["ry"] * r_lines.uniform(0.95, 1.05), p["rot"] + r_lines.normal(0, 0.05),
                       p["coeffs"] * r_lines.uniform(0.7, 1.3, 4), p["phases"] + r_lines.normal(0, 0.2, 4), n=512)
            dense = _resample(ol, closed=True)
            cuts = np.sort(r_lines.choice(len(dense), int(r_lines.integers(3, 7)), replace=False))
            for a, b in zip(cuts, np.roll(cuts, -1), strict=True):
                arc = dense[a:b] if b > a else np.vstack([dense[a:], dense[:b]])
                if len(arc) < 10 or r_lines.random() < 0.2:
                    continue
                w = float(r_lines.uniform(lw_lo, lw_hi))
                ud.add(r_lines, arc, w, float(r_lines.uniform(0.6, 1.0)))
                widths.append(w)
                n_contours += 1
        # free lines: folds, features, construction lines
        for _ in range(int(r_lines.integers(4, 10))):
            f = figures[int(r_lines.integers(len(figures)))]
            x0 = f["cx"] + r_lines.normal(0, 0.5) * f["rx"]
            y0 = f["cy"] + r_lines.normal(0, 0.5) * f["ry"]
            w = float(r_lines.uniform(lw_lo, min(lw_hi, 2.5)))
            ud.add(r_lines, _walk(r_lines, x0, y0, r_lines.uniform(0, 2 * math.pi), r_lines.uniform(20, 90), 0.02),
                   w, float(r_lines.uniform(0.5, 1.0)))
            widths.append(w)
            n_free += 1
        # hatching: parallel short strokes, sometimes crossed
        hatch_sets = []
        for _ in range(int(r_lines.integers(2, 6))):
            f = figures[int(r_lines.integers(len(figures)))]
            cxh = f["cx"] + r_lines.normal(0, 0.4) * f["rx"]
            cyh = f["cy"] + r_lines.normal(0, 0.4) * f["ry"]
            angle = r_lines.uniform(0, math.pi)
            spacing = float(r_lines.uniform(3.5, 7.0))
            n_str = int(r_lines.integers(5, 16))
            length = float(r_lines.uniform(10, 30))
            w = float(r_lines.uniform(lw_lo, min(lw_hi, 2.0)))
            crossed = bool(r_lines.random() < 0.3)
            angles = [angle] + ([angle + r_lines.uniform(0.9, 1.55)] if crossed else [])
            for ang in angles:
                d = np.array([math.cos(ang), math.sin(ang)])
                nrm = np.array([-d[1], d[0]])
                for j in range(n_str):
                    c0 = np.array([cxh, cyh]) + nrm * (j - n_str / 2) * spacing + d * r_lines.normal(0, 2.0)
                    ln = length * r_lines.uniform(0.75, 1.2)
                    pts = _walk(r_lines, *(c0 - d * ln / 2), ang + r_lines.normal(0, 0.04), ln, 0.004)
                    ud.add(r_lines, pts, w, float(r_lines.uniform(0.55, 1.0)), taper_px=2.0)
                    widths.append(w)
            hatch_sets.append({"angle_deg": math.degrees(angle), "spacing_px": spacing, "n_strokes": n_str,
                               "length_px": length, "width_px": w, "crossed": crossed})
            n_hatch_sets += 1
        lines_meta = {"medium": medium, "pigment": ud_pigment, "thickness_um": ud_thickness, "grainy": ud_grainy,
                      "n_contour_arcs": n_contours, "n_free_lines": n_free, "hatching": hatch_sets,
                      "width_px_min": min(widths) if widths else 0.0, "width_px_max": max(widths) if widths else 0.0,
                      "width_px_mean": float(np.mean(widths)) if widths else 0.0}
    ud_cov, ud_prs = ud.rasterise(size)
    if ud_grainy:
        ud_prs = ud_prs * np.clip(0.75 + 0.35 * _smooth_noise(r_lines, size, 0.7), 0.2, 1.0)
    paint_hidden = bool(factors.get("hidden", True))
    t_ud = (ud_thickness * ud_prs * (ud_cov > 0) * paint_hidden).astype(np.float32)

    pent_layers: list[tuple[F32, F32, F32]] = []
    pent_cov = np.zeros((size, size), np.float32)
    shapes_meta: list[dict[str, Any]] = []
    if kind in ("shapes", "mixed"):
        n_shapes = int(r_shapes.integers(1, 4)) if kind == "shapes" else int(r_shapes.integers(1, 3))
        for _ in range(n_shapes):
            shape_type = str(r_shapes.choice(["blob", "ellipse", "polygon", "rectangle"]))
            cx, cy = r_shapes.uniform(0.15, 0.85, 2) * size
            rad = r_shapes.uniform(0.05, 0.16) * size
            rot = r_shapes.uniform(0, math.pi)
            if shape_type == "blob":
                poly = _blob(cx, cy, rad, rad * r_shapes.uniform(0.5, 1.5), rot,
                             r_shapes.uniform(0, 0.25, 4) / np.arange(1, 5), r_shapes.uniform(0, 6.3, 4))
            elif shape_type == "ellipse":
                poly = _blob(cx, cy, rad, rad * r_shapes.uniform(0.4, 1.0), rot, np.zeros(1), np.zeros(1))
            elif shape_type == "polygon":
                nv = int(r_shapes.integers(4, 8))
                ang = np.sort(r_shapes.uniform(0, 2 * math.pi, nv))
                rr = rad * r_shapes.uniform(0.6, 1.1, nv)
                poly = np.stack([cx + rr * np.cos(ang), cy + rr * np.sin(ang)], axis=1)
            else:
                hw, hh = rad, rad * r_shapes.uniform(0.3, 0.9)
                corners = np.array([[-hw, -hh], [hw, -hh], [hw, hh], [-hw, hh]])
                c, s = math.cos(rot), math.sin(rot)
                poly = corners @ np.array([[c, s], [-s, c]]) + [cx, cy]
            cov = _poly_coverage(size, poly)
            paint_name = str(r_shapes.choice(list(PENTIMENTO_PAINTS)))
            thick = float(r_shapes.uniform(10, 35))
            k, s_ = mixture_ks(PENTIMENTO_PAINTS[paint_name], lam)
            t_field = cov * thick * np.clip(1.0 + 0.15 * _smooth_noise(r_shapes, size, 12.0), 0.5, 1.5)
            if paint_hidden:
                pent_layers.append((t_field.astype(np.float32), k.astype(np.float32), s_.astype(np.float32)))
            pent_cov = np.maximum(pent_cov, cov)
            shapes_meta.append({"type": shape_type, "cx": cx, "cy": cy, "radius_px": rad, "rotation_rad": rot,
                                "paint": paint_name, "thickness_um": thick, "area_px": float(cov.sum())})

    # ---------------------------------------------------------------- decoys
    n_top = int(factors.get("n_top_strokes", r_decoy.integers(2, 9)))
    top = _Strokes()
    top_meta = []
    for j in range(n_top):
        along_contour = bool(j < len(fig_outlines) and r_decoy.random() < 0.5)
        if along_contour:
            ol = _resample(fig_outlines[j], closed=True)
            a = int(r_decoy.integers(len(ol)))
            pts = np.roll(ol, -a, axis=0)[: int(r_decoy.uniform(0.1, 0.35) * len(ol))]
        else:
            pts = _walk(r_decoy, *r_decoy.uniform(0.05, 0.95, 2) * size, r_decoy.uniform(0, 2 * math.pi),
                        r_decoy.uniform(15, 120), 0.03)
        w = float(r_decoy.uniform(1.0, 6.0) if r_decoy.random() < 0.6 else r_decoy.uniform(1.0, 2.5))
        top.add(r_decoy, pts, w, 1.0)
        top_meta.append({"width_px": w, "length_px": float(len(pts) * 0.3), "along_contour": along_contour})
    top_cov, _ = top.rasterise(size)
    top_thick = float(r_decoy.uniform(8, 25))
    k_top, s_top = (a.astype(np.float32) for a in mixture_ks(TOP_STROKE_PAINT, lam))

    n_glaze = int(factors.get("n_glaze", r_glaze.integers(2, 7)))
    glaze = _Strokes()
    glaze_name = str(r_glaze.choice(list(GLAZE_PAINTS)))
    glaze_meta = []
    for _ in range(n_glaze):
        w = float(r_glaze.uniform(1.0, 8.0))
        pts = _walk(r_glaze, *r_glaze.uniform(0.05, 0.95, 2) * size, r_glaze.uniform(0, 2 * math.pi),
                    r_glaze.uniform(15, 100), 0.03)
        glaze.add(r_glaze, pts, w, 1.0)
        glaze_meta.append({"width_px": w, "length_px": float(len(pts) * 0.3)})
    glaze_cov, _ = glaze.rasterise(size)
    glaze_thick = float(r_glaze.uniform(8, 20))
    k_gl, s_gl = (a.astype(np.float32) for a in mixture_ks(GLAZE_PAINTS[glaze_name], lam))

    has_crack = bool(factors.get("craquelure", r_crack.random() < 0.5))
    crack_cell = float(r_crack.uniform(18, 45))
    crack_hw = float(r_crack.uniform(0.3, 0.7))
    crack_cover = float(r_crack.uniform(0.3, 1.0))
    crack_depth = float(r_crack.uniform(0.2, 0.45))
    crack = (_craquelure(r_crack, size, crack_cell, crack_hw, crack_cover) if has_crack
             else np.zeros((size, size), np.float32))
    dirt_vis, dirt_ir = 1.0, 0.9  # grime in the cracks is dark at all wavelengths (slightly less in the IR)

    has_varnish = bool(factors.get("varnish", r_tex.random() < 0.8))
    varnish_um = float(r_tex.uniform(10, 30))
    yellowing = float(r_tex.uniform(0.0, 1.0))
    k_var = 0.0004 + 0.012 * yellowing * _edge(lam, 460, 30)
    varnish_gain = np.exp(-2.0 * k_var * (varnish_um if has_varnish else 0.0)).astype(np.float32)
    k1, k2 = 0.01, float(r_tex.uniform(0.4, 0.6))  # Saunderson: captured external and internal reflection

    support = "canvas" if ground_name == "lead_white_oil" else "panel"
    relief_angle = r_tex.uniform(0, 2 * math.pi)
    gy, gx = np.gradient(t_paint)
    relief = gx * math.cos(relief_angle) + gy * math.sin(relief_angle)
    shade = 1.0 + 0.02 * np.clip(relief / (np.median(np.abs(relief)) * 1.5 + 1e-6), -2.5, 2.5)
    if support == "canvas":
        period = r_tex.uniform(4.5, 9.0)
        shade = shade * (1.0 + 0.012 * np.sin(2 * math.pi * xx / period) * np.sin(2 * math.pi * yy / period))
    shade = shade.astype(np.float32)

    # ---------------------------------------------------------------- spectral rendering
    flat = {
        "t_ud": t_ud.ravel(), "t_paint": t_paint.ravel(), "top": (top_cov * top_thick).ravel(),
        "glaze": (glaze_cov * glaze_thick).ravel(), "crack": (crack * crack_depth).ravel(), "shade": shade.ravel(),
        "shade_t": shade_t.ravel().astype(np.float32),
    }
    pent_flat = [(t.ravel(), k, s) for t, k, s in pent_layers]

    def render(idx: NDArray[np.intp], lines: bool, shapes: bool) -> F32:
        r = np.broadcast_to(rg, (len(idx), len(lam))).copy()
        if lines:
            t = flat["t_ud"][idx]
            m = t > 0
            if m.any():
                r[m] = km_layer(r[m], k_ud, s_ud, t[m])
        if use_imprimatura:
            r = km_layer(r, k_imp, s_imp, imp_thickness)
        if shapes:
            for t_all, kp, sp in pent_flat:
                t = t_all[idx]
                m = t > 0.05
                if m.any():
                    r[m] = km_layer(r[m], kp, sp, t[m])
        w = w_full[idx]
        r = km_layer(r, w @ kmix, w @ smix, flat["t_paint"][idx])
        for key, kk, ss in (("glaze", k_gl, s_gl), ("top", k_top, s_top)):
            t = flat[key][idx]
            m = t > 0.05
            if m.any():
                r[m] = km_layer(r[m], kk, ss, t[m])
        r *= varnish_gain
        return k1 + (1.0 - k1) * (1.0 - k2) * r / (1.0 - k2 * r)

    e_vis = planck(LAM_VIS, 6500.0)[:, None] * rgb_sensitivities(LAM_VIS)
    w_rgb = (e_vis / e_vis.sum(axis=0, keepdims=True)).astype(np.float32)  # perfect white -> (1, 1, 1)
    e_ir = planck(lam_ir, IR_BANDS[band]["illuminant_K"]) * ir_response(lam_ir, band)
    w_ir = (e_ir / e_ir.sum()).astype(np.float32)

    def integrate(refl: F32) -> F32:
        """Spectra (n, L) -> linear camera values (n, 4): R, G, B, IR."""
        return np.concatenate([refl[:, :n_vis] @ w_rgb, (refl[:, n_vis:] @ w_ir)[:, None]], axis=1)

    # Pixels inside one region with nothing but ground, (imprimatura) and final paint go through a per-region
    # look-up table over (shading, thickness), interpolated bilinearly; every other pixel is rendered in full.
    pent_total = sum((t for t, _, _ in pent_flat), np.zeros(n_pix, np.float32))
    region_of = np.argmax(w_reg, axis=1)
    pure = (_USE_LUT & (w_reg.max(axis=1) >= 0.999) & (flat["t_ud"] <= 0) & (pent_total <= 0.05)
            & (flat["glaze"] <= 0.05) & (flat["top"] <= 0.05))
    cam_lin = np.empty((n_pix, 4), np.float32)
    comp_idx = np.flatnonzero(~pure)
    cam_lin[comp_idx] = integrate(render(comp_idx, True, True))
    line_idx = np.flatnonzero((ud_cov.ravel() > 0) & paint_hidden)
    if len(line_idx):  # areal mixing of the anti-aliased line with what is beside it
        c = ud_cov.ravel()[line_idx, None]
        cam_lin[line_idx] = c * cam_lin[line_idx] + (1.0 - c) * integrate(render(line_idx, False, True))
    sub = np.broadcast_to(rg, (1, len(lam))).copy()
    if use_imprimatura:
        sub = km_layer(sub, k_imp, s_imp, imp_thickness)
    n_t, n_x = 17, 40
    t_grid = np.linspace(0.0, 1.0, n_t, dtype=np.float32)
    for r_i in range(w_reg.shape[1]):
        idx = np.flatnonzero(pure & (region_of == r_i))
        if not len(idx):
            continue
        tx = flat["t_paint"][idx]
        x_lo, x_hi = float(tx.min()), float(tx.max()) + 1e-3
        x_grid = np.linspace(x_lo, x_hi, n_x, dtype=np.float32)
        kt = (1.0 - t_grid[:, None]) * kmix[2 * r_i] + t_grid[:, None] * kmix[2 * r_i + 1]  # (n_t, L)
        st_ = (1.0 - t_grid[:, None]) * smix[2 * r_i] + t_grid[:, None] * smix[2 * r_i + 1]
        kk = np.repeat(kt, n_x, axis=0)
        ss_ = np.repeat(st_, n_x, axis=0)
        xg = np.tile(x_grid, n_t)
        spec = km_layer(np.broadcast_to(sub, kk.shape), kk, ss_, xg)
        spec *= varnish_gain
        spec = k1 + (1.0 - k1) * (1.0 - k2) * spec / (1.0 - k2 * spec)
        lut = integrate(spec.astype(np.float32)).reshape(n_t, n_x, 4)
        ft = np.clip(flat["shade_t"][idx], 0.0, 1.0) * (n_t - 1)
        fx = (tx - x_lo) / (x_hi - x_lo) * (n_x - 1)
        i0 = np.minimum(ft.astype(np.int64), n_t - 2)
        j0 = np.minimum(fx.astype(np.int64), n_x - 2)
        a_ = (ft - i0)[:, None]
        b_ = (fx - j0)[:, None]
        cam_lin[idx] = ((1 - a_) * ((1 - b_) * lut[i0, j0] + b_ * lut[i0, j0 + 1])
                        + a_ * ((1 - b_) * lut[i0 + 1, j0] + b_ * lut[i0 + 1, j0 + 1]))
    # surface effects that do not depend on wavelength within a camera band: relief shading and crack dirt
    surf = flat["shade"] * (1.0 - flat["crack"] * dirt_vis)
    surf_ir = flat["shade"] * (1.0 - flat["crack"] * dirt_ir)
    rgb_lin = cam_lin[:, :3] * surf[:, None]
    ir_lin = cam_lin[:, 3] * surf_ir

    # Counterfactual: the same picture without underdrawing and pentimenti (only hidden pixels differ). Both
    # versions go through each camera's optics (blur) before comparing, so "revealed" means visible to the
    # IR camera's resolution, not merely present in the paint.
    hid_idx = np.flatnonzero(((ud_cov.ravel() > 0) & paint_hidden) | (pent_total > 0.05))
    ir_lin0 = ir_lin.copy()
    rgb_lin0 = rgb_lin.copy()
    if len(hid_idx):
        cam0 = integrate(render(hid_idx, False, False))
        ir_lin0[hid_idx] = cam0[:, 3] * surf_ir[hid_idx]
        rgb_lin0[hid_idx] = cam0[:, :3] * surf[hid_idx, None]
    ir_b = ndimage.gaussian_filter(ir_lin.reshape(size, size), ir_blur)
    ir_b0 = ndimage.gaussian_filter(ir_lin0.reshape(size, size), ir_blur)
    ir_drop = (ir_b0 - ir_b) / np.maximum(ir_b0, 1e-4)
    e = cam["vis_exposure"]
    vis_drop = np.zeros((size, size), np.float32)
    for ch in range(3):
        v1 = srgb_encode(ndimage.gaussian_filter(rgb_lin[:, ch].reshape(size, size), vis_blur) * e)
        v0 = srgb_encode(ndimage.gaussian_filter(rgb_lin0[:, ch].reshape(size, size), vis_blur) * e)
        vis_drop = np.maximum(vis_drop, np.abs(v0 - v1))
    present = (ud_cov >= 0.5) | (pent_cov >= 0.5)
    revealed = ir_drop >= TAU_IR
    concealed = vis_drop <= TAU_VIS
    clear = (top_cov <= TOP_EXCLUDE) & (crack < CRACK_EXCLUDE)
    mask = present & revealed & concealed & clear & paint_hidden

    # ---------------------------------------------------------------- visible camera
    vis = rgb_lin.reshape(size, size, 3)
    vis = np.stack([ndimage.gaussian_filter(vis[..., i], vis_blur) for i in range(3)], axis=-1)
    vis = vis * cam["vis_exposure"]
    sigma_v = noise_mult * np.sqrt(cam["vis_shot"] * np.clip(vis, 0, None) + cam["vis_read_noise"] ** 2)
    vis = vis + sigma_v * r_noise.standard_normal(vis.shape)
    visible = np.round(srgb_encode(vis) * 255.0) / 255.0

    # ---------------------------------------------------------------- IR camera: x_vis = s R (x_ir - c) + c + t
    th = math.radians(rot_deg)
    a_mat = scale * np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])  # (row, col) order
    centre = np.array([(size - 1) / 2.0, (size - 1) / 2.0])
    offset = centre + np.array([shift[1], shift[0]]) - a_mat @ centre
    ir_img = ndimage.affine_transform(ir_lin.reshape(size, size).astype(np.float64), a_mat, offset=offset,
                                      order=1, mode="nearest")
    ir_img = ndimage.gaussian_filter(ir_img, ir_blur)
    rr = ((xx - centre[1]) ** 2 + (yy - centre[0]) ** 2) / (size / 2.0) ** 2
    ga = cam["ir_gradient_angle"]
    lamp = (1.0 - cam["ir_vignette"] * rr) * (1.0 + cam["ir_gradient"] * ((xx - centre[1]) * math.cos(ga)
                                                                          + (yy - centre[0]) * math.sin(ga)) / size)
    ir_img = cam["ir_offset"] + cam["ir_exposure"] * ir_img * lamp
    ir_sigma = noise_mult * np.sqrt(2e-5 * np.clip(ir_img, 0, None) + ir_read**2)
    ir_img = ir_img + ir_sigma * r_noise.standard_normal(ir_img.shape)
    if band == "ingaas":
        ir_img = ir_img * (1.0 + noise_mult * 0.004 * r_noise.standard_normal((1, size)))
    ir_out = np.round(np.clip(ir_img, 0.0, 1.0) * 65535.0) / 65535.0

    meta.update({
        "hidden_painted": paint_hidden, "ground": ground_name, "support": support,
        "imprimatura": {"present": use_imprimatura, "thickness_um": imp_thickness, "recipe": IMPRIMATURA},
        "regions": [{"name": "sky", "paint": sky_paint, "thickness_um": region_thick[0]},
                    {"name": "land", "paint": land_paint, "thickness_um": region_thick[1], "horizon_y": horizon_y}]
        + [{"name": f"figure{i}", **{k: v for k, v in f.items() if k != "_p"}} for i, f in enumerate(figures)],
        "shading": {"fold_period_px": fold_period, "fold_angle_rad": fold_angle, "brush_angle_rad": brush_angle},
        "underdrawing": lines_meta, "pentimenti": shapes_meta,
        "decoys": {"top_strokes": top_meta, "top_paint": TOP_STROKE_PAINT, "top_thickness_um": top_thick,
                   "glaze_strokes": glaze_meta, "glaze_paint": glaze_name, "glaze_thickness_um": glaze_thick,
                   "craquelure": {"present": has_crack, "cell_px": crack_cell, "half_width_px": crack_hw,
                                  "coverage": crack_cover, "depth": crack_depth}},
        "varnish": {"present": has_varnish, "thickness_um": varnish_um, "yellowing": yellowing},
        "saunderson": {"k1": k1, "k2": k2},
        "visible_camera": {"illuminant_K": 6500.0, "blur_sigma_px": vis_blur, "exposure": cam["vis_exposure"],
                           "read_noise": cam["vis_read_noise"] * noise_mult, "shot_noise": cam["vis_shot"],
                           "gamma": "srgb", "bits": 8, "wavelengths_nm": [400.0, 700.0, 20.0]},
        "ir_camera": {"band": band, "range_nm": list(IR_BANDS[band]["range_nm"]),
                      "step_nm": IR_BANDS[band]["step_nm"], "illuminant_K": IR_BANDS[band]["illuminant_K"],
                      "blur_sigma_px": ir_blur, "exposure": cam["ir_exposure"], "offset": cam["ir_offset"],
                      "read_noise": ir_read * noise_mult, "vignette": cam["ir_vignette"],
                      "gradient": cam["ir_gradient"], "bits": 16, "gamma": 1.0},
        "registration": {"shift_px": list(shift), "rotation_deg": rot_deg, "scale": scale,
                         "convention": "IR pixel x_ir sees visible-frame point s*R(rot)*(x_ir - c) + c + shift"},
        "mask_rule": {"tau_ir_relative": TAU_IR, "tau_vis_display": TAU_VIS, "top_exclude": TOP_EXCLUDE,
                      "crack_exclude": CRACK_EXCLUDE},
        "mask_stats": {"mask_px": int(mask.sum()), "present_px": int(present.sum()),
                       "not_revealed_px": int((present & ~revealed).sum()),
                       "shows_in_visible_px": int((present & revealed & ~concealed).sum()),
                       "excluded_top_or_crack_px": int((present & revealed & concealed & ~clear).sum())},
    })
    layers = {"underdrawing": ud_cov, "pentimento": pent_cov, "top_strokes": top_cov, "glaze": glaze_cov,
              "craquelure": crack, "ir_drop": ir_drop.astype(np.float32), "vis_drop": vis_drop.astype(np.float32)}
    return SceneB(visible_rgb=visible.astype(np.float32), ir=ir_out.astype(np.float32), mask=mask, kind=kind,
                  meta=_py(meta), layers={k: v.astype(np.float32) for k, v in layers.items()})


def suite(kind: str, n: int, seed0: int = 0, size: int = 384) -> list[SceneB]:
    """``n`` scenes of one kind with seeds ``seed0 .. seed0 + n - 1``."""
    return [make_scene(seed0 + i, kind=kind, size=size) for i in range(n)]


def write_pair(directory: str | Path, scene: SceneB, stem: str = "scene") -> dict[str, Path]:
    """Write ``STEM_visible.png`` (8-bit RGB), ``STEM_ir.png`` (16-bit grey), ``STEM_mask.png`` (8-bit 0/255)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"visible": out / f"{stem}_visible.png", "ir": out / f"{stem}_ir.png", "mask": out / f"{stem}_mask.png"}
    vis8 = np.round(np.clip(scene.visible_rgb, 0, 1) * 255.0).astype(np.uint8)
    Image.fromarray(vis8, mode="RGB").save(paths["visible"])
    ir16 = np.round(np.clip(scene.ir, 0, 1) * 65535.0).astype(np.uint16)
    Image.fromarray(ir16).save(paths["ir"])
    Image.fromarray(scene.mask.astype(np.uint8) * 255).save(paths["mask"])
    return paths


# ------------------------------------------------------------------------------------------ baselines


def baseline_maps(scene: SceneB) -> dict[str, np.ndarray]:
    """Two training-free heat maps (larger = more likely hidden), in the pixel grid as given (no registration).

    ``dark``: ``1 - IR`` min-max normalised. ``lstsq_residual``: IR predicted by a least-squares fit on
    ``[R, G, B, 1]`` over the whole image, minus the observed IR.
    """
    ir = scene.ir.astype(np.float64)
    dark = 1.0 - (ir - ir.min()) / max(float(ir.max() - ir.min()), 1e-9)
    x = np.concatenate([scene.visible_rgb.reshape(-1, 3).astype(np.float64), np.ones((ir.size, 1))], axis=1)
    beta, *_ = np.linalg.lstsq(x, ir.ravel(), rcond=None)
    resid = (x @ beta - ir.ravel()).reshape(ir.shape)
    return {"dark": dark.astype(np.float32), "lstsq_residual": resid.astype(np.float32)}


def pixel_ap(mask: np.ndarray, heat: np.ndarray) -> float:
    """Pixel-level average precision of ``heat`` against boolean ``mask`` (sklearn)."""
    from sklearn.metrics import average_precision_score

    y = np.asarray(mask, bool).ravel()
    if not y.any():
        return float("nan")
    return float(average_precision_score(y, np.asarray(heat, np.float64).ravel()))


# ------------------------------------------------------------------------------------------------ CLI


def main(argv: Sequence[str] | None = None) -> int:
    """Write ``--n`` scenes of ``--kind`` to ``--out`` as PNG triples plus ``scenes.csv``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kind", choices=KINDS, default="lines")
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--seed0", type=int, default=0)
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--baselines", action="store_true", help="also print the pixel AP of the two baselines")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    aps: dict[str, list[float]] = {"dark": [], "lstsq_residual": []}
    t0 = time.perf_counter()
    for i in range(args.n):
        seed = args.seed0 + i
        scene = make_scene(seed, kind=args.kind, size=args.size)
        stem = f"{args.kind}_{seed:05d}"
        write_pair(args.out, scene, stem)
        m = scene.meta
        rows.append({"stem": stem, "kind": args.kind, "seed": seed, "ir_band": m["ir_camera"]["band"],
                     "shift_x_px": m["registration"]["shift_px"][0], "shift_y_px": m["registration"]["shift_px"][1],
                     "rotation_deg": m["registration"]["rotation_deg"], "scale": m["registration"]["scale"],
                     "mask_px": m["mask_stats"]["mask_px"], "factors": json.dumps(m, sort_keys=True)})
        if args.baselines:
            for name, heat in baseline_maps(scene).items():
                aps[name].append(pixel_ap(scene.mask, heat))
    with open(args.out / "scenes.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["stem", "kind", "factors"])
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {args.n} {args.kind} scenes to {args.out} in {time.perf_counter() - t0:.1f} s")
    if args.baselines:
        for name, vals in aps.items():
            print(f"{name}: mean pixel AP {np.nanmean(vals):.3f} ({', '.join(f'{v:.2f}' for v in vals)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
