"""Yarn statistics of a canvas: a training-free descriptor of the fabric for same-roll comparison.

Pieces cut far apart on one roll share no threads, but they share the *yarn* and the *loom*: the
thread densities, how irregular the spacing of consecutive threads is and how it is correlated
along the cloth, how much of the spacing a thread fills, how its thickness varies between threads
and along them (slubs), the stripes of thicker or thinner yarn, and the relief of the over/under
crossings (Johnson et al. 2010, 2013; Murillo-Fuentes et al. 2025 for the learned counterpart).
:func:`yarn_descriptor` measures these per thread family from an X-ray plate, in units that do not
depend on the plate's resolution (threads, fractions of the thread spacing, threads/cm), and is
designed to be insensitive to the imaging: grey-level polarity (threads dark or bright), contrast,
gamma, blur within reason, paint and noise (a local contrast normalisation comes first, and the
measurements are made on the thread lattice found by the spectrum).

Method, per plate:

1. **Normalise.** Plates finer than 200 px/cm are resampled to 200 px/cm. The image minus its
   Gaussian blur (sigma 0.2 cm) is divided by its local standard deviation (sigma 0.3 cm).
2. **Lattice** (:func:`_lattice`; self-contained, so that changes to the thread counter do not move
   the descriptor). The mean amplitude spectrum of 1.2 cm tiles, whitened by its median over rings of
   equal frequency, gives each family's fundamental (strongest bin near its axis, or the bin at half
   its frequency when that reaches 0.6 of it); the whole plate's spectrum refines it to a fraction of
   a bin: density (threads/cm) and angle. The phase gradient of step 3 gives the local density and
   angle of 1 cm blocks, and their robust spreads.
3. **Analytic phases.** For each family the normalised image is filtered with a one-sided Gaussian
   band around its spectral peak (sigma 0.4 × the density); the phase of the result is the thread
   phase ``phi`` (2π per thread).
4. **Polarity.** The normalised image averaged over the cell of both phases gives its values at
   the four lattice points (crossing, thread over gap either way, interstice). The interstice is
   the odd one out; it is at phase (0, 0) when the threads are dark, at (π, π) when they are bright.
   Every later measurement is made on the image signed so that threads are bright.
5. **Threads.** The image is straightened along each family's angle and cut into strips along the
   threads (each strip a whole number of the other family's spacings, at least 0.15 cm); the strip
   profile's analytic phase places every thread (sub-pixel), and thread ``m`` of one strip is
   matched to thread ``m`` of the next by their phase. This gives per thread and strip: its centre
   (hence the spacings), its width (fraction of the spacing above the half level between the
   thread's peak and its neighbouring gaps) and its strength (peak minus gaps).
6. **Statistics** (:data:`FAMILY_FEATURES`): density; relative spread of the densities of the
   1 cm windows; angle spread; spacing irregularity (coefficient of variation of the per-thread
   mean spacings after removing a linear trend, and the same corrected for the along-thread
   measurement noise); autocorrelation of the spacing sequence at lags 1, 2 and 4; share of the
   spacing variance at periods of 6 threads or more; width fraction and harmonic ratios
   (2nd/1st, 3rd/1st) of the mean thread profile; thread-to-thread spread of width and strength;
   along-thread spread of width and strength; slub index (share of along-thread strength
   residuals beyond 2.5 robust standard deviations, and their kurtosis); stripe index (spread of
   20-thread running means of the width); the family's share of the weave's spectral amplitude.
   Global (:data:`GLOBAL_FEATURES`): relief (spectral amplitude of the over/under checkerboard at
   half the sum and half the difference of the two families' frequencies, relative to the
   fundamentals) and the polarity confidence.

:func:`pair_features` turns two descriptors into the absolute differences that the fitted comparison
(:class:`artlens.canvas.fabric.YarnModel`) weighs; it tries both ways of pairing the two canvases'
thread families (a cut may be turned by 90°) and keeps the closer one.

References:
    C. R. Johnson Jr., D. H. Johnson, N. Hamashima, H. S. Yang, E. Hendriks, "Weave matching and the
    thread-count features of canvas rolls", in *Vincent van Gogh: The Yellow House*, 2010.

    D. H. Johnson, C. R. Johnson Jr., R. G. Erdmann, "Weave analysis of paintings on canvas from
    radiographs", Signal Processing 93(3), 527-540, 2013.

    J. J. Murillo-Fuentes, P. M. Olmos, L. Alba-Carcelén, "Canvas comparison with Siamese networks on
    X-ray patches" (arXiv:2506.20272), 2025.

This module imports numpy and scipy only (no torch).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from artlens.errors import InvalidImageError, InvalidParameterError

__all__ = [
    "FAMILY_FEATURES",
    "GLOBAL_FEATURES",
    "LOG_FEATURES",
    "PAIR_FEATURES",
    "YarnDescriptor",
    "pair_features",
    "pairing_differences",
    "yarn_descriptor",
]

WORK_PX_PER_CM = 200.0
"""Plates finer than this are resampled to it (px/cm)."""

FAMILY_FEATURES = (
    "density",  # threads/cm: the refined spectral peak (step 2)
    "density_spread",  # robust relative spread of the window densities (1.4826 MAD / median)
    "angle_spread",  # robust spread of the window angles, degrees
    "spacing_cv",  # CV of the detrended per-thread mean spacings
    "spacing_cv_corrected",  # the same, less the along-thread measurement noise
    "spacing_ac1",  # autocorrelation of the spacing sequence, lag 1
    "spacing_ac2",  # lag 2
    "spacing_ac4",  # lag 4
    "spacing_lowfreq",  # share of the spacing variance at periods >= 6 threads
    "width_fraction",  # fraction of the spacing above the half level, mean thread profile
    "width_median",  # the same measured thread by thread (median over threads)
    "harmonic2",  # |2nd| / |1st| harmonic of the mean thread profile
    "harmonic3",  # |3rd| / |1st|
    "width_cv",  # thread-to-thread CV of the mean width
    "strength_cv",  # thread-to-thread CV of the mean strength
    "width_along",  # along-thread CV of the width
    "strength_along",  # along-thread CV of the strength
    "slub_skew",  # skewness of the along-thread mass residuals (slubs: a positive tail)
    "slub_width_skew",  # skewness of the along-thread width residuals
    "slub_strength_skew",  # the same for the strength
    "slub_tail",  # share of mass residuals above 2.5 robust sigma minus the share below -2.5
    "mass_along",  # along-thread spread of the thread mass (mean signed level over the thread's cell)
    "stripe_index",  # log variance ratio of 8-thread running means of the width to white noise
    "stripe_strength",  # the same for the strength
    "amplitude_share",  # this family's share of the weave's fundamental spectral amplitude
)
GLOBAL_FEATURES = (
    "relief",  # over/under checkerboard amplitude relative to the fundamentals
    "polarity_confidence",  # 0..1, how clearly the interstice stands out (not compared)
)
COMPARED_GLOBAL = ("relief",)
_THREAD_FEATURES = ("spacing_cv", "spacing_cv_corrected", "spacing_ac1", "spacing_ac2", "spacing_ac4",
                    "spacing_lowfreq", "width_median", "width_cv", "strength_cv", "width_along", "strength_along",
                    "slub_skew", "slub_width_skew", "slub_strength_skew", "slub_tail", "mass_along", "stripe_index",
                    "stripe_strength")


@dataclass
class YarnDescriptor:
    """The yarn statistics of one plate.

    Attributes:
        families: ``{"horizontal": {feature: value}, "vertical": {...}}`` (see :data:`FAMILY_FEATURES`;
            NaN where a measurement failed).
        global_features: see :data:`GLOBAL_FEATURES`.
        px_per_cm: the plate's resolution (before resampling).
        threads_bright: the polarity found (True: threads brighter than the interstices).
        notes: what went wrong or was approximated.
    """

    families: dict[str, dict[str, float]]
    global_features: dict[str, float]
    px_per_cm: float
    threads_bright: bool
    notes: list[str] = field(default_factory=list)

    def vector(self, order: tuple[str, str] = ("horizontal", "vertical")) -> np.ndarray:
        """Features as one vector: the families in ``order``, then the compared global features."""
        v = [self.families[f][k] for f in order for k in FAMILY_FEATURES]
        v += [self.global_features[k] for k in COMPARED_GLOBAL]
        return np.asarray(v, dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        def r(x: float) -> float | None:
            return None if not math.isfinite(x) else round(float(x), 6)

        return {"families": {f: {k: r(v) for k, v in d.items()} for f, d in self.families.items()},
                "global": {k: r(v) for k, v in self.global_features.items()},
                "px_per_cm": self.px_per_cm, "threads_bright": self.threads_bright, "notes": list(self.notes)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> YarnDescriptor:
        def f(x: Any) -> float:
            return float("nan") if x is None else float(x)

        return cls({k: {n: f(v) for n, v in fam.items()} for k, fam in d["families"].items()},
                   {k: f(v) for k, v in d["global"].items()}, float(d["px_per_cm"]), bool(d["threads_bright"]),
                   list(d.get("notes", [])))


# --------------------------------------------------------------------------------------------------
# helpers


def _smooth(img: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur with a large sigma, computed on a block-averaged copy and upsampled (fast)."""
    k = max(1, int(sigma_px // 4))
    h, w = img.shape
    if k == 1:
        return ndimage.gaussian_filter(img, sigma_px, mode="reflect")
    hh, ww = -(-h // k) * k, -(-w // k) * k
    padded = np.pad(img, ((0, hh - h), (0, ww - w)), mode="reflect")
    small = padded.reshape(hh // k, k, ww // k, k).mean(axis=(1, 3))
    small = ndimage.gaussian_filter(small, sigma_px / k, mode="reflect")
    rows = (np.arange(h) + 0.5) / k - 0.5
    cols = (np.arange(w) + 0.5) / k - 0.5
    return ndimage.map_coordinates(small, np.meshgrid(rows, cols, indexing="ij"), order=1, mode="nearest")


def _ranks(img: np.ndarray) -> np.ndarray:
    """Grey levels replaced by their rank (0..1; ties share their mean rank): any global monotone
    tone curve (contrast, gamma, equalisation) gives the same result."""
    flat = img.ravel()
    vals, inv, counts = np.unique(flat, return_inverse=True, return_counts=True)
    if vals.size > 65536:  # a float image: quantise to 16 bits first (ranks of 1e6 distinct values are costly)
        q = np.round((flat - vals[0]) / max(vals[-1] - vals[0], 1e-30) * 65535)
        vals, inv, counts = np.unique(q, return_inverse=True, return_counts=True)
    cum = np.cumsum(counts) - 0.5 * counts
    return (cum[inv] / flat.size).reshape(img.shape)


def _normalise(img: np.ndarray, ppc: float) -> np.ndarray:
    """Local contrast normalisation: (image - blur(0.2 cm)) / local std (0.3 cm)."""
    hp = img - _smooth(img, 0.2 * ppc)
    sd = np.sqrt(np.maximum(_smooth(hp * hp, 0.3 * ppc), 0.0))
    floor = 0.05 * float(np.median(sd)) + 1e-12
    return hp / (sd + floor)


def _freq_vector(direction: str, density: float, angle_deg: float) -> tuple[float, float]:
    """(f_row, f_x) in cycles/cm of a family's grating (the conventions of :mod:`artlens.synth.weave`)."""
    t = math.radians(angle_deg)
    if direction == "horizontal":
        return density * math.cos(t), density * math.sin(t)
    return -density * math.sin(t), density * math.cos(t)


def _analytic_2d(img: np.ndarray, ppc: float, f: tuple[float, float], rel_sigma: float = 0.4) -> np.ndarray:
    """Complex image: ``img`` filtered by a Gaussian (sigma ``rel_sigma`` × |f|) around frequency ``f``
    only (one-sided), so its phase grows by 2π per period along ``f``."""
    h, w = img.shape
    fr = np.fft.fftfreq(h, 1.0 / ppc)[:, None]
    fx = np.fft.fftfreq(w, 1.0 / ppc)[None, :]
    s = rel_sigma * math.hypot(*f)
    g = np.exp(-0.5 * ((fr - f[0]) ** 2 + (fx - f[1]) ** 2) / s**2)
    return np.fft.ifft2(np.fft.fft2(img) * g)


BAND = (5.0, 40.0)
"""Thread densities searched (threads/cm); the top is lowered to 0.45 × px/cm on coarse plates."""
MAX_ANGLE_DEG = 12.0
"""Largest thread deviation from the image axes that is searched (degrees)."""
HALF_RATIO = 0.6
"""A peak at half the strongest frequency of a family's sector with at least this share of its
(whitened) amplitude is the fundamental: the strongest was its second harmonic (interstice spots)."""


def _welch(img: np.ndarray, ppc: float, tile_cm: float = 1.2) -> tuple[np.ndarray, int]:
    """Mean amplitude spectrum of Hann-tapered tiles (``tile_cm``, half overlapping), zero-padded to twice
    their size; returns ``(|X| of shape (N, N), N)``."""
    h, w = img.shape
    n = min(int(round(tile_cm * ppc)), h, w)
    step, big = max(1, n // 2), 2 * n
    win = np.outer(np.hanning(n), np.hanning(n))
    power = np.zeros((big, big))
    count = 0
    for y in range(0, h - n + 1, step):
        for x in range(0, w - n + 1, step):
            t = img[y: y + n, x: x + n]
            power += np.abs(np.fft.fft2((t - t.mean()) * win, (big, big))) ** 2
            count += 1
    return np.sqrt(power / max(count, 1)), big


def _lattice(norm: np.ndarray, ppc: float) -> dict[str, dict[str, float]]:
    """Density (threads/cm) and angle (degrees) of both thread families, from the spectrum.

    The mean spectrum of 1.2 cm tiles is whitened by its median over each ring of equal frequency
    (paint, grain and noise spread their power over all directions, the threads put theirs near the
    axes); in each family's sector (:data:`BAND`, within :data:`MAX_ANGLE_DEG` of the axis) the strongest
    bin is the fundamental unless the bin at half its frequency reaches :data:`HALF_RATIO` of it. The
    peak is then refined on the whole plate's spectrum (strongest bin within 1.5 tile bins, parabolic
    interpolation along both axes).
    """
    amp, big = _welch(norm, ppc)
    f = np.fft.fftfreq(big, 1.0 / ppc)
    fr, fx = np.meshgrid(f, f, indexing="ij")
    rad = np.hypot(fr, fx)
    ring = np.round(rad / (ppc / big)).astype(np.intp)
    order = np.argsort(ring, axis=None, kind="stable")
    counts = np.bincount(ring.ravel())
    groups = np.split(amp.ravel()[order], np.cumsum(counts)[:-1])
    ring_med = np.array([float(np.median(g)) if g.size else 1.0 for g in groups])
    white = amp / (ring_med[ring] + 1e-12)
    lo, hi = BAND[0], min(BAND[1], 0.45 * ppc)
    tan = math.tan(math.radians(MAX_ANGLE_DEG))
    h, w = norm.shape
    full = np.abs(np.fft.fft2(norm * np.outer(np.hanning(h), np.hanning(w))))
    out: dict[str, dict[str, float]] = {}
    for name in ("horizontal", "vertical"):
        if name == "horizontal":
            sector = (rad >= lo) & (rad <= hi) & (np.abs(fx) <= tan * np.abs(fr)) & (fr > 0)
        else:
            sector = (rad >= lo) & (rad <= hi) & (np.abs(fr) <= tan * np.abs(fx)) & (fx > 0)
        idx = np.flatnonzero(sector)
        if idx.size == 0:
            raise InvalidImageError(f"the plate is too coarse to search {name} threads")
        j = idx[np.argmax(white.ravel()[idx])]
        est = np.array([fr.ravel()[j], fx.ravel()[j]])
        near_half = np.hypot(fr - est[0] / 2, fx - est[1] / 2) <= 1.5 * ppc / big
        if np.hypot(*est) / 2 >= lo and near_half.any() and white[near_half].max() >= HALF_RATIO * white.ravel()[j]:
            est = est / 2
        peak_snr = float(white.ravel()[j])
        # refine on the whole plate's spectrum
        r0, c0 = est[0] * h / ppc, est[1] * w / ppc  # bins of the full spectrum
        rad_bins = 1.5 * np.array([h, w]) / big
        rr = np.arange(int(np.floor(r0 - rad_bins[0])), int(np.ceil(r0 + rad_bins[0])) + 1)
        cc = np.arange(int(np.floor(c0 - rad_bins[1])), int(np.ceil(c0 + rad_bins[1])) + 1)
        sub = full[np.ix_(rr % h, cc % w)]
        a, b = np.unravel_index(int(np.argmax(sub)), sub.shape)

        def parabola(m1: float, m0: float, p1: float) -> float:
            den = m1 - 2 * m0 + p1
            return float(np.clip(0.5 * (m1 - p1) / den, -0.5, 0.5)) if den < 0 else 0.0

        ri, ci = rr[a], cc[b]
        dr = parabola(full[(ri - 1) % h, ci % w], full[ri % h, ci % w], full[(ri + 1) % h, ci % w])
        dc = parabola(full[ri % h, (ci - 1) % w], full[ri % h, ci % w], full[ri % h, (ci + 1) % w])
        f_r, f_x = (ri + dr) * ppc / h, (ci + dc) * ppc / w
        if name == "horizontal":
            angle = math.degrees(math.atan2(f_x, f_r))
        else:
            angle = math.degrees(math.atan2(-f_r, f_x))
        out[name] = {"density": float(math.hypot(f_r, f_x)), "angle": angle, "peak_snr": peak_snr}
    return out


def _local_spread(z: np.ndarray, ppc: float, block_cm: float = 1.0) -> dict[str, float]:
    """Robust spread of the local density (relative) and angle (degrees) over ``block_cm`` blocks, from the
    phase gradient of a family's analytic image ``z`` (no unwrapping: ``Im(conj(z) grad z) / |z|^2``)."""
    gy, gx = np.gradient(z)
    wgt = np.abs(z) ** 2 + 1e-30
    ky = np.imag(np.conj(z) * gy)  # = |z|^2 dphi/dy
    kx = np.imag(np.conj(z) * gx)
    n = max(4, int(round(block_cm * ppc)))
    h, w = z.shape
    ny, nx = h // n, w // n
    if ny < 1 or nx < 1 or ny * nx < 3:
        return {"density_spread": float("nan"), "angle_spread": float("nan")}

    def blocks(a: np.ndarray) -> np.ndarray:
        return a[: ny * n, : nx * n].reshape(ny, n, nx, n).sum(axis=(1, 3)).ravel()

    wb = blocks(wgt)
    fy, fx = blocks(ky) / wb, blocks(kx) / wb  # rad/px
    dens = np.hypot(fy, fx) * ppc / (2 * np.pi)
    ang = np.degrees(np.arctan2(fy, fx))
    ang = (ang - np.median(ang) + 90.0) % 180.0 - 90.0
    return {"density_spread": _robust_sd(dens) / float(np.median(dens)), "angle_spread": _robust_sd(ang)}


def _peak_amplitude(spec: np.ndarray, ppc: float, f: tuple[float, float], radius: int = 2) -> float:
    """Largest |spectrum| within ``radius`` bins of frequency ``f`` (cycles/cm) of an fft2 spectrum."""
    h, w = spec.shape
    r0 = int(round(f[0] * h / ppc))
    c0 = int(round(f[1] * w / ppc))
    rr = (np.arange(r0 - radius, r0 + radius + 1) % h)[:, None]
    cc = (np.arange(c0 - radius, c0 + radius + 1) % w)[None, :]
    return float(np.abs(spec[rr, cc]).max())


def _robust_sd(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    if x.size < 3:
        return float("nan")
    return float(1.4826 * np.median(np.abs(x - np.median(x))))


def _autocorr(x: np.ndarray, lag: int) -> float:
    x = x[np.isfinite(x)]
    if x.size <= lag + 5:
        return float("nan")
    x = x - x.mean()
    d = float(np.dot(x, x))
    return float(np.dot(x[:-lag], x[lag:]) / d) if d > 0 else float("nan")


def _detrend(x: np.ndarray) -> np.ndarray:
    ok = np.isfinite(x)
    if ok.sum() < 3:
        return x - np.nanmean(x)
    k = np.arange(x.size, dtype=float)
    c = np.polyfit(k[ok], x[ok], 1)
    return x - np.polyval(c, k)


def _straighten(img: np.ndarray, direction: str, angle_deg: float) -> np.ndarray:
    """The image resampled so that the threads of ``direction`` run down the rows (axis 0) exactly,
    the across-thread coordinate along axis 1 (for horizontal threads the image is transposed first)."""
    if direction == "horizontal":
        a, t = img.T, -math.radians(angle_deg)
    else:
        a, t = img, math.radians(angle_deg)
    h, w = a.shape
    shift = math.tan(t) * (np.arange(h) - (h - 1) / 2)  # a vertical thread moves by tan(t) px per row
    margin = int(math.ceil(abs(shift).max())) + 1
    if w - 2 * margin < 16:
        raise InvalidImageError("the plate is too narrow for its thread angle")
    cols = np.arange(margin, w - margin, dtype=float)
    rr = np.repeat(np.arange(h, dtype=float)[:, None], cols.size, axis=1)
    cc = cols[None, :] + shift[:, None]
    return ndimage.map_coordinates(a, [rr, cc], order=1, mode="nearest")


# --------------------------------------------------------------------------------------------------
# per-family thread analysis


def _thread_table(straight: np.ndarray, ppc: float, density: float, other_density: float
                  ) -> dict[str, np.ndarray] | None:
    """Per strip and thread: centre (px), width fraction and strength, from the strip profiles of a
    straightened, polarity-corrected (threads bright) image."""
    h, w = straight.shape
    period = ppc / density
    n_other = max(1, int(round(0.15 * other_density)))
    strip = max(4, int(round(n_other * ppc / other_density)))
    n_strips = h // strip
    if n_strips < 3 or w < 6 * period:
        return None
    prof = straight[: n_strips * strip].reshape(n_strips, strip, w).mean(axis=1)
    f0 = density / ppc  # cycles/px
    freqs = np.fft.fftfreq(w)
    g = np.exp(-0.5 * ((freqs - f0) / (0.4 * f0)) ** 2) * (freqs > 0)
    z = np.fft.ifft(np.fft.fft(prof - prof.mean(axis=1, keepdims=True), axis=1) * g[None, :], axis=1)
    phase = np.unwrap(np.angle(z), axis=1) / (2 * np.pi)  # threads
    edge = int(math.ceil(1.5 * period))
    u = np.arange(w, dtype=float)
    core = slice(edge, w - edge)
    # align the thread numbering of consecutive strips (phase continuity across strips)
    for j in range(1, n_strips):
        dphi = np.median(phase[j, core] - phase[j - 1, core])
        phase[j] -= np.round(dphi)
    lo = int(np.ceil(np.max(phase[:, core][:, 0])))
    hi = int(np.floor(np.min(phase[:, core][:, -1])))
    if hi - lo < 8:
        return None
    ks = np.arange(lo, hi + 1)
    centres = np.full((n_strips, ks.size), np.nan)
    for j in range(n_strips):
        p = phase[j, core]
        if np.any(np.diff(p) <= 0):  # a phase slip (the band lost the grating): keep monotone parts
            p = np.maximum.accumulate(p)
        centres[j] = np.interp(ks, p, u[core], left=np.nan, right=np.nan)
    # width and strength of each thread in each strip, on the unfiltered profile
    width = np.full_like(centres, np.nan)
    strength = np.full_like(centres, np.nan)
    mass = np.full_like(centres, np.nan)
    n_sub = 16
    offs = (np.arange(n_sub) + 0.5) / n_sub - 0.5  # in spacings, -0.5..0.5 around the centre
    for j in range(n_strips):
        c = centres[j]
        ok = np.isfinite(c)
        if ok.sum() < 3:
            continue
        cc = c[ok]
        sp = np.gradient(cc)  # local spacing, px
        pos = cc[:, None] + offs[None, :] * sp[:, None]
        vals = np.interp(pos, u, prof[j])
        peak = np.interp(cc, u, prof[j])
        gaps = 0.5 * (np.interp(cc - 0.5 * sp, u, prof[j]) + np.interp(cc + 0.5 * sp, u, prof[j]))
        amp = peak - gaps
        half = 0.5 * (peak + gaps)
        width[j, ok] = (vals > half[:, None]).mean(axis=1)
        strength[j, ok] = amp
        mass[j, ok] = vals.mean(axis=1)
    return {"centres": centres, "width": width, "strength": strength, "mass": mass, "period": np.asarray(period),
            "profiles": prof, "phase": phase}


def _family_features(table: dict[str, np.ndarray] | None) -> dict[str, float]:
    """Spacing, width and strength statistics of one family's thread table (see the module docstring)."""
    nan = float("nan")
    out = {k: nan for k in _THREAD_FEATURES}
    if table is None:
        return out
    c = table["centres"]
    sp = np.diff(c, axis=1)  # (strips, threads - 1) px
    valid = np.isfinite(sp)
    keep = valid.mean(axis=0) >= 0.5
    if keep.sum() < 8:
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean_sp = np.nanmean(sp, axis=0)
        s = mean_sp / np.nanmean(mean_sp[keep])
        s[~keep] = np.nan
        sd = _detrend(s)
        var_between = float(np.nanvar(sd))
        within = np.nanvar(sp / np.nanmean(mean_sp[keep]), axis=0)
        n_per = valid.sum(axis=0)
        noise = float(np.nanmean(within[keep] / np.maximum(n_per[keep], 1)))
        out["spacing_cv"] = math.sqrt(var_between)
        out["spacing_cv_corrected"] = math.sqrt(max(var_between - noise, 0.0))
        filled = np.where(np.isfinite(sd), sd, 0.0)
        out["spacing_ac1"] = _autocorr(filled, 1)
        out["spacing_ac2"] = _autocorr(filled, 2)
        out["spacing_ac4"] = _autocorr(filled, 4)
        spec = np.abs(np.fft.rfft(filled - filled.mean())) ** 2
        fr = np.fft.rfftfreq(filled.size)
        tot = spec[1:].sum()
        out["spacing_lowfreq"] = float(spec[(fr > 0) & (fr <= 1 / 6)].sum() / tot) if tot > 0 else nan

        wdt, st = table["width"], table["strength"]
        okw = np.isfinite(wdt).mean(axis=0) >= 0.5
        if okw.sum() < 8:
            return out
        wdt, st = wdt[:, okw], st[:, okw]
        mw = np.nanmean(wdt, axis=0)
        ms = np.nanmean(st, axis=0)
        out["width_median"] = float(np.median(mw))
        out["width_cv"] = float(np.nanstd(mw) / np.nanmean(mw))
        out["strength_cv"] = float(np.nanstd(ms) / abs(np.nanmean(ms)))
        # along-thread residuals: thread means and strip means removed (paint and blotches change whole strips)
        rw = wdt - mw[None, :]
        rw = rw - np.nanmean(rw, axis=1, keepdims=True)
        rs = (st - ms[None, :]) / abs(np.nanmean(ms))
        rs = rs - np.nanmean(rs, axis=1, keepdims=True)
        out["width_along"] = float(np.sqrt(np.nanmean(rw**2)) / np.nanmean(mw))
        out["strength_along"] = float(np.sqrt(np.nanmean(rs**2)))
        ma = table["mass"][:, okw]
        rm = ma - np.nanmean(ma, axis=0, keepdims=True)
        rm = rm - np.nanmean(rm, axis=1, keepdims=True)
        rs_ = rs
        rs = rm / (np.sqrt(np.nanmean(rm**2)) + 1e-12)
        out["mass_along"] = float(np.sqrt(np.nanmean(rm**2)))
        for name, r in (("slub_skew", rs), ("slub_width_skew", rw), ("slub_strength_skew", rs_)):
            r = r[np.isfinite(r)]
            if r.size > 30:
                m2 = float(np.mean((r - r.mean()) ** 2))
                out[name] = float(np.mean((r - r.mean()) ** 3) / max(m2, 1e-12) ** 1.5)
        r = rs[np.isfinite(rs)]
        rsd = _robust_sd(r)
        if r.size > 30 and rsd > 0:
            out["slub_tail"] = float(np.mean(r > 2.5 * rsd) - np.mean(r < -2.5 * rsd))
        n_run = 8
        if mw.size >= 3 * n_run:
            for name, x in (("stripe_index", mw), ("stripe_strength", ms)):
                run = np.convolve(x - x.mean(), np.ones(n_run) / n_run, mode="valid")
                v = float(np.var(x))
                out[name] = float(np.log(max(float(np.var(run)) * n_run / v, 1e-3))) if v > 0 else nan
    return out


def _profile_features(phase_img: np.ndarray, signed: np.ndarray) -> dict[str, float]:
    """Width fraction and harmonic ratios of the mean thread profile, folding the signed image by the
    family's thread phase (phase 0 at the thread centre)."""
    nb = 32
    b = np.floor((phase_img % 1.0) * nb + 0.5).astype(np.intp) % nb
    sums = np.bincount(b.ravel(), weights=signed.ravel(), minlength=nb)
    cnt = np.bincount(b.ravel(), minlength=nb)
    prof = sums / np.maximum(cnt, 1)
    c = np.fft.rfft(prof - prof.mean())
    a1 = abs(c[1]) + 1e-12
    # width at half level, from the band-limited profile (harmonics 1-4) sampled finely
    t = np.arange(512) / 512
    fine = sum(2 * (c[k] * np.exp(2j * np.pi * k * t * nb / nb)).real for k in range(1, 5)) / nb
    half = 0.5 * (fine.max() + fine.min())
    return {"width_fraction": float(np.mean(fine > half)), "harmonic2": float(abs(c[2]) / a1),
            "harmonic3": float(abs(c[3]) / a1)}


# --------------------------------------------------------------------------------------------------
# the descriptor


def yarn_descriptor(image: Any, px_per_cm: float | None = None) -> YarnDescriptor:
    """Yarn statistics of one plate (see the module docstring for the method).

    Args:
        image: 2-D array (any dtype) or a :class:`~artlens.io.image.Plate`.
        px_per_cm: resolution (px/cm); required for an array.

    Returns:
        A :class:`YarnDescriptor`.

    Raises:
        InvalidImageError: the plate is smaller than 2 × 2 cm or shows no weave.

    Example:
        >>> from artlens.synth import Roll
        >>> roll = Roll(12.0, 15.0, seed=1, length_cm=20, width_cm=20)
        >>> d = yarn_descriptor(roll.cut(1, 1, 3, 3, px_per_cm=100).image, 100.0)
        >>> round(d.families["vertical"]["density"])
        15
    """
    from artlens.io.image import Plate

    if isinstance(image, Plate):
        ppc = float(px_per_cm) if px_per_cm is not None else image.require_px_per_cm()
        img = np.asarray(image.read(), dtype=np.float64)
    else:
        if px_per_cm is None:
            raise InvalidParameterError("px_per_cm is required for an array")
        ppc = float(px_per_cm)
        img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2:
        raise InvalidImageError(f"expected a 2-D grey-level image, got shape {img.shape}")
    notes: list[str] = []
    work = ppc
    if ppc > WORK_PX_PER_CM * 1.05:
        img = ndimage.zoom(img, WORK_PX_PER_CM / ppc, order=1)
        work = WORK_PX_PER_CM
    h, w = img.shape
    if min(h, w) < 2.0 * work:
        raise InvalidImageError(f"the plate ({h / work:.2f} x {w / work:.2f} cm) is smaller than 2 x 2 cm")
    norm = _normalise(_ranks(img), work)
    lattice = _lattice(norm, work)
    fvec = {k: _freq_vector(k, v["density"], v["angle"]) for k, v in lattice.items()}
    z = {k: _analytic_2d(norm, work, f) for k, f in fvec.items()}
    for k, v in z.items():
        lattice[k].update(_local_spread(v, work))
    ph = {k: np.angle(v) / (2 * np.pi) for k, v in z.items()}  # -0.5..0.5 threads, 0 at the band's maxima
    # polarity from the cell of both phases: the interstice is the odd one out of the four lattice points
    nb = 8
    bh = np.floor((ph["horizontal"] % 1.0) * nb + 0.5).astype(np.intp) % nb
    bv = np.floor((ph["vertical"] % 1.0) * nb + 0.5).astype(np.intp) % nb
    cell = np.bincount((bh * nb + bv).ravel(), weights=norm.ravel(), minlength=nb * nb) / np.maximum(
        np.bincount((bh * nb + bv).ravel(), minlength=nb * nb), 1)
    cell = cell.reshape(nb, nb)
    c00, c11 = cell[0, 0], cell[nb // 2, nb // 2]
    mixed = 0.5 * (cell[0, nb // 2] + cell[nb // 2, 0])
    # dark threads: (0, 0) is an interstice (maxima of the bands are gaps), far from the mixed points
    d00, d11 = abs(c00 - mixed), abs(c11 - mixed)
    threads_bright = bool(d11 > d00)
    pol_conf = float(abs(d00 - d11) / (d00 + d11 + 1e-12))
    sign = 1.0 if threads_bright else -1.0
    signed = sign * norm
    centre_shift = 0.0 if threads_bright else 0.5  # thread centres at phase 0 (bright) or 0.5 (dark)

    spec = np.fft.fft2(norm * np.outer(np.hanning(h), np.hanning(w)))
    amps = {k: _peak_amplitude(spec, work, f) for k, f in fvec.items()}
    fh, fv = np.array(fvec["horizontal"]), np.array(fvec["vertical"])
    relief = max(_peak_amplitude(spec, work, tuple((fh + fv) / 2)), _peak_amplitude(spec, work, tuple((fh - fv) / 2)))
    relief /= math.sqrt(amps["horizontal"] * amps["vertical"]) + 1e-12

    families: dict[str, dict[str, float]] = {}
    for name, other in (("horizontal", "vertical"), ("vertical", "horizontal")):
        lat = lattice[name]
        feats: dict[str, float] = {"density": lat["density"], "density_spread": lat["density_spread"],
                                   "angle_spread": lat["angle_spread"]}
        table = None
        try:
            straight = _straighten(signed, name, lat["angle"])
            table = _thread_table(straight, work, lat["density"], lattice[other]["density"])
        except InvalidImageError as exc:
            notes.append(f"{name}: {exc}")
        if table is None:
            notes.append(f"{name}: too few threads for the thread statistics")
        tf = _family_features(table)
        pf = _profile_features(ph[name] - centre_shift, signed)
        feats.update(tf)
        feats.update(pf)
        feats["amplitude_share"] = amps[name] / (amps["horizontal"] + amps["vertical"] + 1e-12)
        families[name] = {k: float(feats[k]) for k in FAMILY_FEATURES}
    glob = {"relief": float(relief), "polarity_confidence": pol_conf}
    return YarnDescriptor(families, glob, ppc, threads_bright, notes)


LOG_FEATURES = frozenset({"density_spread", "angle_spread", "spacing_cv", "spacing_cv_corrected", "width_cv",
                          "strength_cv", "width_along", "strength_along", "mass_along", "relief", "harmonic2",
                          "harmonic3"})
"""Scale-like features compared on a log scale (a jitter of 0.02 vs 0.04 differs more than 0.10 vs 0.12);
values are floored at 1e-3 first."""

PAIR_FEATURES = (tuple(f"max:{k}" for k in FAMILY_FEATURES) + tuple(f"min:{k}" for k in FAMILY_FEATURES)
                 + COMPARED_GLOBAL)
"""Names of the entries of :func:`pair_features`: for each family feature the larger and the smaller of
its absolute differences over the two paired thread families, then the compared global features."""


def _compared(d: YarnDescriptor, order: tuple[str, str]) -> np.ndarray:
    """:meth:`YarnDescriptor.vector` with :data:`LOG_FEATURES` on a log scale."""
    v = d.vector(order)
    names = [k for _ in order for k in FAMILY_FEATURES] + list(COMPARED_GLOBAL)
    for i, n in enumerate(names):
        if n in LOG_FEATURES and np.isfinite(v[i]):
            v[i] = math.log(max(v[i], 1e-3))
    return v


def pairing_differences(a: YarnDescriptor, b: YarnDescriptor, scale: np.ndarray | None = None
                        ) -> tuple[np.ndarray, np.ndarray, bool]:
    """The two canvases' thread families paired the closer way, and their differences.

    A cut may be turned by 90°, so A's horizontal family is compared either with B's horizontal or
    with B's vertical one. The cost of a pairing is the sum over features of the squared summed
    differences ``|a_1 - b_1| + |a_2 - b_2|`` divided by ``scale`` (one per family feature, then one per
    compared global feature: the typical within-roll difference; capped at 10 per feature, NaNs
    skipped) or, without ``scale``, the density difference alone.

    Returns:
        ``(summed differences (len(FAMILY_FEATURES) + len(COMPARED_GLOBAL),), per-family differences
        (2, len(FAMILY_FEATURES)), swapped)``; ``swapped`` is True when A's horizontal family was paired
        with B's vertical one.
    """
    nf = len(FAMILY_FEATURES)
    va = _compared(a, ("horizontal", "vertical"))
    best: tuple[float, np.ndarray, np.ndarray, bool] | None = None
    for swapped, order in ((False, ("horizontal", "vertical")), (True, ("vertical", "horizontal"))):
        d = np.abs(va - _compared(b, order))
        fam = d[: 2 * nf].reshape(2, nf)
        summed = np.concatenate([fam.sum(axis=0), d[2 * nf:]])
        if scale is None:
            cost = float(summed[0])
        else:
            cost = float(np.nansum(np.minimum(summed / np.asarray(scale, float), 10.0) ** 2))
        if best is None or cost < best[0]:
            best = (cost, summed, fam, swapped)
    assert best is not None
    return best[1], best[2], best[3]


def pair_features(a: YarnDescriptor, b: YarnDescriptor, scale: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
    """Absolute differences of two descriptors (:data:`PAIR_FEATURES`), the families paired the closer way
    (:func:`pairing_differences` with ``scale``).

    Returns:
        ``(x, swapped)``: for each family feature the larger, then the smaller of its two per-family
        absolute differences, then the compared global features' absolute differences (NaN where
        either side is NaN; :data:`LOG_FEATURES` compared on a log scale).
    """
    summed, fam, swapped = pairing_differences(a, b, scale)
    nf = len(FAMILY_FEATURES)
    return np.concatenate([np.fmax(fam[0], fam[1]), np.fmin(fam[0], fam[1]), summed[nf:]]), swapped
