"""Spectral thread counting: the windowed 2-D Fourier method for canvas X-rays.

The plate is cut into square windows (``window_cm`` wide, every ``step_cm``). In each window the
weave is a pair of nearly periodic gratings, so the window's 2-D power spectrum has one strong
peak near the vertical frequency axis (horizontal threads, counted along y) and one near the
horizontal frequency axis (vertical threads, counted along x). The distance of a peak from the
origin, in cycles/cm, is the thread density in threads/cm; its direction is the thread angle.

Per window:

1. multiply by a periodic 2-D Hann taper (which confines the window's mean to the lowest bins);
2. 2-D FFT of the window at its own size (no zero padding: step 4 refines the peak), computed
   only up to the band's highest frequency;
3. in each direction's search sector (density within ``band``, angle within ``max_angle_deg`` of the
   axis) take the strongest bin, or, if it is not a narrow peak (``min_prominence`` times above its
   flanks), the strongest bin that is; if the spectrum also peaks at half that frequency with at least
   ``harmonic_ratio`` of its strength, the strongest bin was a harmonic and the half is taken;
4. refine the peak to a fraction of a bin with the exact three-point ratio formula of the Hann
   window along each frequency axis: with ``a = |X[k±1]| / |X[k]|`` (the larger neighbour), the
   offset is ``±(2a - 1) / (a + 1)`` bins, exact for a pure tone;
5. confidence = ``1 - median / peak`` of the spectrum magnitude in the search sector.

Per plate (``resolve_fundamental``): spots at every interstice (ground missing from, or filling,
the gaps between crossing threads) and two-ply yarn can make the second or third harmonic about as
strong as the fundamental, and windows then flip between the density and its multiples; a lining
canvas or a patch adds windows at an unrelated density. The density most windows agree on, or a
half / third of it that at least half as many windows found, is the plate's fundamental
(:func:`resolve_harmonics`); a window near k = 2, 3 times it measured its k-th harmonic: its density
is divided by k (the angle is the same) and it is counted in ``harmonic_windows_corrected``. A
window near no multiple is an outlier. The plate's mean spectrum then checks the pair (:func:`fit_lattice`):
the peaks off the axes, which only the interlacing makes, must lie on its lattice (paint strokes, slubs and
banding put theirs on the axes, where they can win the windows). When enough windows found a half or a
double that was not chosen, the summary names it (``harmonic_alternative``): no window reports a harmonic silently, and
no plate hides an octave doubt.

Windows whose density departs from the median of their 3×3 neighbours by more than
``outlier_threads_per_cm`` (or by more than 5 robust standard deviations of such departures,
whichever is larger), or whose confidence is below ``min_confidence``, are flagged as outliers:
kept in the maps and in ``windows.csv``, left out of the summary.

References:
    D. H. Johnson, C. R. Johnson Jr., A. G. Klein, W. A. Sethares, H. Lee, E. Hendriks,
    "A thread counting algorithm for art forensics", IEEE DSP Workshop, 2009.
    D. H. Johnson, C. R. Johnson Jr., R. G. Erdmann, "Weave analysis of paintings on canvas from
    radiographs", Signal Processing 93(3), 2013.

This module imports numpy and scipy only (no torch).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import sliding_window_view

from artlens.canvas.threads.grid import DEFAULT_STEP_CM, DEFAULT_WINDOW_CM, WindowGrid, check_window, window_px
from artlens.canvas.threads.preprocess import plate_source
from artlens.canvas.threads.result import DirectionMaps, ThreadCountResult
from artlens.errors import InvalidParameterError
from artlens.io.image import Plate

MIN_CONFIDENCE = 0.3
"""Windows whose peak confidence is below this are outliers (the default of every counter)."""
OUTLIER_THREADS_PER_CM = 1.0
"""Windows further than this from the median of their neighbours are outliers (at least; see
:func:`flag_outliers`)."""


@dataclass(frozen=True)
class SpectralParams:
    """Settings of the spectral counter. Lengths in cm, densities in threads/cm, angles in degrees.

    Attributes:
        window_cm: side of the square analysis window.
        step_cm: distance between neighbouring window centres.
        band: (min, max) thread density searched, threads/cm. Narrow it around expected values
            to avoid harmonics on difficult plates.
        max_angle_deg: largest thread deviation from its axis that is searched.
        harmonic_ratio: a peak at half the strongest frequency with at least this fraction of its
            magnitude is taken as the fundamental (per window).
        min_prominence: when a window's strongest bin does not stand this many times above its
            flanks (3-4 bins away along the counting axis, on both sides), take the strongest bin
            that does: the weave's peaks are narrow, while the power that paint, stretcher bars and
            exposure put at the band's low end is broad and can out-weigh them. 0: always the
            strongest bin. A narrow peak taken that way must stand twice this above its flanks,
            or the window gets confidence 0 (an outlier).
        resolve_fundamental: find each direction's fundamental from what the windows found
            (:func:`resolve_harmonics`) and divide by k the density of every window that reported its
            k-th harmonic.
        workers: threads used by the FFT.
    """

    window_cm: float = DEFAULT_WINDOW_CM
    step_cm: float = DEFAULT_STEP_CM
    band: tuple[float, float] = (5.0, 40.0)
    max_angle_deg: float = 10.0
    harmonic_ratio: float = 0.8
    outlier_threads_per_cm: float = OUTLIER_THREADS_PER_CM
    min_confidence: float = MIN_CONFIDENCE
    resolve_fundamental: bool = True
    min_prominence: float = 3.0
    workers: int = 2

    def validate(self) -> None:
        """Raise :class:`~artlens.errors.InvalidParameterError` for settings no plate can use."""
        check_window(self.window_cm, self.step_cm)
        lo, hi = self.band
        if not (0 < lo < hi):
            raise InvalidParameterError(f"band needs 0 < min < max threads/cm, got {lo} {hi}", param="band")
        if not (0 < self.max_angle_deg < 45):
            raise InvalidParameterError("max_angle_deg must be between 0 and 45 degrees", param="max_angle_deg")


@dataclass(frozen=True)
class _Geometry:
    """Window grid and spectral search sectors for one plate and parameter set."""

    grid: WindowGrid
    nk: int  # column frequencies kept: 0 <= kx < nk
    sectors: dict[str, np.ndarray]  # direction -> flat indices into a (nk, n) spectrum [kx, kr mod n]
    kr: np.ndarray  # signed row frequency (bins) of each spectrum element, flat
    kx: np.ndarray  # column frequency (bins), flat
    flanks: dict[str, np.ndarray]  # direction -> (4, s) flat indices 4 and 3 bins below, 3 and 4 above


def _geometry(shape: tuple[int, int], ppc: float, p: SpectralParams) -> _Geometry:
    n = window_px(p.window_cm, ppc)
    if n < 16:
        raise InvalidParameterError(
            f"window_cm {p.window_cm} is only {n} px at {ppc:g} px/cm; use a larger window", param="window_cm"
        )
    grid = WindowGrid.over(shape, ppc, p.window_cm, p.step_cm)
    lo, hi = p.band
    nyquist = ppc / 2
    if hi >= nyquist:
        raise InvalidParameterError(
            f"band max {hi:g} threads/cm is above the Nyquist limit of {nyquist:g} threads/cm at {ppc:g} px/cm",
            param="band",
        )
    if lo * p.window_cm < 2:
        raise InvalidParameterError(
            f"a {p.window_cm:g} cm window holds fewer than 2 threads at {lo:g} threads/cm; "
            "raise the band's min or window_cm", param="band"
        )

    # Only column frequencies up to the band's top (+ 2 bins for refinement) are ever looked at.
    nk = min(n // 2 + 1, int(np.ceil(hi * n / ppc)) + 3)
    kx = np.arange(nk)[:, None] * np.ones((1, n))
    kr = np.fft.fftfreq(n, 1.0 / n)[None, :] * np.ones((nk, 1))
    radius = np.hypot(kr, kx) * ppc / n  # threads/cm
    in_band = (radius >= lo) & (radius <= hi)
    tan_max = np.tan(np.radians(p.max_angle_deg))
    sectors = {
        "horizontal": np.flatnonzero(in_band & (kx <= tan_max * np.abs(kr))),
        "vertical": np.flatnonzero(in_band & (np.abs(kr) <= tan_max * kx)),
    }
    flanks = {}
    for name, idx in sectors.items():
        r, x = kr.ravel()[idx].astype(int), kx.ravel()[idx].astype(int)
        rows = []
        for d in (-4, -3, 3, 4):  # along the counting axis, away from the origin for d > 0
            if name == "horizontal":
                rr, xx = r + d * np.sign(r + (r == 0)), x
            else:
                rr, xx = r, x + d
            # a flank beyond the kept columns mirrors to (-kr, -kx), same magnitude for a real window
            neg = xx < 0
            rr, xx = np.where(neg, -rr, rr), np.abs(xx)
            xx = np.minimum(xx, nk - 1)
            rows.append(xx * n + rr % n)
        flanks[name] = np.stack(rows)
    return _Geometry(grid, nk, sectors, kr.ravel(), kx.ravel(), flanks)


def _hann_offset(left: np.ndarray, centre: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Sub-bin offset of a peak from three Hann-windowed DFT magnitudes (exact for a pure tone)."""
    use_right = right >= left
    a = np.where(use_right, right, left) / np.maximum(centre, 1e-30)
    a = np.clip(a, 0.0, 1.0)
    delta = (2 * a - 1) / (a + 1)
    delta = np.clip(delta, 0.0, 0.5)
    return np.where(use_right, delta, -delta)


def _analyse_band(spec: np.ndarray, geo: _Geometry, p: SpectralParams, ppc: float) -> dict[str, tuple]:
    """Peaks of one band of windows. ``spec``: (m, nk, n) complex spectra of the tapered windows,
    indexed ``[window, kx, kr mod n]``.

    Magnitudes are taken only where they are needed (search sectors and a few bins around the
    peaks), which keeps this step cheap next to the FFT itself.
    """
    m, nh, n = spec.shape
    flat = spec.reshape(m, -1)
    rows = np.arange(m)

    def mag(r: np.ndarray, x: np.ndarray) -> np.ndarray:
        return np.abs(spec[rows, x, r % n])

    out = {}
    for name, idx in geo.sectors.items():
        sector = np.abs(flat[:, idx])
        if p.min_prominence > 0:
            # the strongest NARROW peak: magnitude over the geometric mean of the two flanks' means
            # (3 and 4 bins away along the counting axis); broad paint / exposure power is not one
            fl = np.abs(flat[:, geo.flanks[name]])  # (m, 4, s): -4, -3, +3, +4
            background = np.sqrt(fl[:, :2].mean(axis=1) * fl[:, 2:].mean(axis=1)) + 1e-30
            prominence = sector / background
            narrow = prominence >= p.min_prominence
            strongest = np.argmax(sector, axis=1)
            strongest_narrow = np.argmax(np.where(narrow, sector, -np.inf), axis=1)
            keep = narrow[rows, strongest] | ~narrow.any(axis=1)
            arg = np.where(keep, strongest, strongest_narrow)
            # a narrow peak found under broad power must stand out clearly, or it may be noise
            doubtful = ~keep & (prominence[rows, arg] < 2 * p.min_prominence)
        else:
            arg = np.argmax(sector, axis=1)
            doubtful = np.zeros(m, dtype=bool)
        best = idx[arg]
        peak = sector[rows, arg]
        background = np.median(sector, axis=1)
        kr = geo.kr[best]
        kx = geo.kx[best]

        # harmonic check: is there a peak at half this frequency (3x3 neighbourhood)?
        hr, hx = np.round(kr / 2).astype(int), np.round(kx / 2).astype(int)
        half_best = np.zeros(m)
        half_r, half_x = hr.copy(), hx.copy()
        for dr in (-1, 0, 1):
            for dx in (-1, 0, 1):
                rr, xx = hr + dr, np.clip(hx + dx, 0, nh - 1)
                v = mag(rr, xx)
                better = v > half_best
                half_best = np.where(better, v, half_best)
                half_r = np.where(better, rr, half_r)
                half_x = np.where(better, xx, half_x)
        half_density = np.hypot(half_r, half_x) * ppc / n
        # ... and is it a real peak, standing above the spectrum two bins away along the axis?
        if name == "horizontal":
            flank = np.maximum(mag(half_r - 2, half_x), mag(half_r + 2, half_x))
        else:
            flank = np.maximum(mag(half_r, np.maximum(half_x - 2, 0)), mag(half_r, np.minimum(half_x + 2, nh - 1)))
        take_half = ((half_best >= p.harmonic_ratio * peak) & (half_best >= 2.0 * flank)
                     & (half_density >= p.band[0]))
        kr = np.where(take_half, half_r, kr).astype(int)
        kx = np.where(take_half, half_x, kx).astype(int)
        peak = np.where(take_half, half_best, peak)

        # sub-bin refinement along each frequency axis
        centre = mag(kr, kx)
        up = mag(kr + 1, kx)
        down = mag(kr - 1, kx)
        right = mag(kr, np.minimum(kx + 1, nh - 1))
        # |X(kr, -1)| = |X(-kr, 1)| by Hermitian symmetry of a real window's spectrum
        left = np.where(kx > 0, mag(kr, np.maximum(kx - 1, 0)), mag(-kr, np.ones_like(kx)))
        fr = kr + _hann_offset(down, centre, up)
        fx = kx + _hann_offset(left, centre, right)

        if name == "horizontal":
            sign = np.where(fr < 0, -1.0, 1.0)  # choose the peak of the pair with f_row > 0
            fr, fx = fr * sign, fx * sign
            angle = np.degrees(np.arctan2(fx, fr))
        else:
            angle = np.degrees(np.arctan2(-fr, fx))
        density = np.hypot(fr, fx) * ppc / n
        confidence = np.clip(1.0 - background / np.maximum(peak, 1e-30), 0.0, 1.0)
        confidence = np.where(doubtful, 0.0, confidence)  # flagged as an outlier (min_confidence)
        out[name] = (density, angle, confidence)
    return out


@dataclass(frozen=True)
class Fundamental:
    """What :func:`resolve_harmonics` found for one direction.

    Attributes:
        threads_per_cm: the plate's fundamental; ``None`` without finite windows.
        harmonic: windows that measured its 2nd or 3rd harmonic (their density is to be divided).
        off: windows near no multiple of it (a lining canvas, a patch, broad paint power).
        alternative: when at least :data:`AMBIGUOUS_FRACTION` of the confident windows found a half,
            third, double or triple of the fundamental that was not chosen: ``{"threads_per_cm",
            "windows", "relation"}``; the weave may be that density ("check here"), else ``None``.
        lattice: the windows were measured again on the plate spectrum's lattice (:func:`fit_lattice`,
            :func:`_lattice_scan`); ``harmonic`` then marks the windows whose own axis peak was elsewhere.
    """

    threads_per_cm: float | None
    harmonic: np.ndarray
    off: np.ndarray
    alternative: dict[str, Any] | None = None
    lattice: bool = False


#: a window within this fraction of a density counts as finding it
HARMONIC_TOLERANCE = 0.07
#: a half / third of the windows' majority density is the fundamental when at least this fraction as
#: many windows found it
SUBHARMONIC_SUPPORT = 0.5
#: a harmonic relation not chosen, found by at least this fraction of the windows, is reported
AMBIGUOUS_FRACTION = 0.1


def _support(d: np.ndarray, centre: float) -> np.ndarray:
    """Which densities lie within :data:`HARMONIC_TOLERANCE` of ``centre``."""
    return np.abs(d - centre) <= HARMONIC_TOLERANCE * centre


def _alternative(d: np.ndarray, fundamental: float) -> dict[str, Any] | None:
    """A half, third, double or triple of ``fundamental`` that at least :data:`AMBIGUOUS_FRACTION` of the
    window densities ``d`` found (the first, in that order), or ``None``."""
    for relation, factor in (("half", 0.5), ("third", 1 / 3), ("double", 2.0), ("triple", 3.0)):
        near = _support(d, fundamental * factor)
        if near.sum() >= max(2, AMBIGUOUS_FRACTION * d.size):
            return {"threads_per_cm": round(float(np.median(d[near])), 3), "windows": int(near.sum()),
                    "relation": relation}
    return None


def resolve_harmonics(density: np.ndarray, confident: np.ndarray | None = None, *,
                      near: float | None = None) -> Fundamental:
    """The plate's fundamental from its windows; which windows measured a harmonic of it, and which
    measured something else.

    Interstice spots (ground missing from, or filling, every gap between crossings) and two-ply yarn
    can make the second or third harmonic as strong as the fundamental, so windows flip between the
    density and its multiples; a lining canvas or a patch adds windows at an unrelated density.

    1. The *base* is the density most confident windows agree on (the mode, within
       :data:`HARMONIC_TOLERANCE`).
    2. If at least :data:`SUBHARMONIC_SUPPORT` as many windows found a third, else a half, of the
       base, the base was a harmonic and that lower density is the fundamental (the lowest first).
    3. A window near ``k`` times the fundamental (k = 2, 3; within 12 %) measured its k-th harmonic.
       A window near no multiple (more than 20 % off) measured something else: it is flagged, kept
       in the maps, left out of the plate's figures.
    4. A half, third, double or triple of the fundamental that at least :data:`AMBIGUOUS_FRACTION`
       of the windows found is reported as an alternative: windows cannot tell which is the weave.

    Neither the plate's summed spectrum nor the windows' counts alone can settle step 2 every time:
    a plain weave's over/under checkerboard puts power at half the thread frequencies, and paint at
    the band's low end, exactly where a sub-harmonic would be. Hence step 4.

    With ``near`` (the plate spectrum's lattice, :func:`fit_lattice`), steps 1-2 are replaced: the
    fundamental is the median of the windows within :data:`HARMONIC_TOLERANCE` of ``near``, or, where
    fewer than 2 found it, of ``density / k`` over the windows near its k-th harmonic (k = 2, 3, 4; the
    k most windows found); ``None`` when no window found any of them.

    Args:
        density: ``(ny, nx)`` window densities, threads/cm (NaN: no peak).
        confident: windows whose peak is trusted (confidence at least ``min_confidence``); all
            finite windows when ``None`` or when none is.
        near: the fundamental is known to lie near this density, threads/cm.
    """
    finite = np.isfinite(density)
    empty = np.zeros(density.shape, dtype=bool)
    d = density[finite & (True if confident is None else confident)]
    if d.size == 0:
        d = density[finite]
    if d.size == 0:
        return Fundamental(None, empty, empty)
    d = np.sort(d)  # windows within the tolerance of each density, by binary search
    if near is not None:
        found = {k: d[_support(d, k * near)] / k for k in (1, 2, 3, 4)}
        k = 1 if found[1].size >= 2 else max(found, key=lambda j: (found[j].size, -j))
        if found[k].size == 0:
            return Fundamental(None, empty, empty)
        fundamental = float(np.median(found[k]))
    else:
        counts = (np.searchsorted(d, d * (1 + HARMONIC_TOLERANCE), side="right")
                  - np.searchsorted(d, d * (1 - HARMONIC_TOLERANCE), side="left"))
        base = float(np.median(d[_support(d, float(d[np.argmax(counts)]))]))
        n_base = int(_support(d, base).sum())
        fundamental = base
        for k in (3, 2):  # the lowest frequency first
            sub = _support(d, base / k)
            if sub.sum() >= max(2, SUBHARMONIC_SUPPORT * n_base):
                fundamental = float(np.median(d[sub]))
                break
    alternative = _alternative(d, fundamental)
    with np.errstate(invalid="ignore"):
        multiple = np.clip(np.rint(density / fundamental), 1, None)
        deviation = np.abs(density - multiple * fundamental) / (multiple * fundamental)
        harmonic = finite & (multiple >= 2) & (multiple <= 4) & (deviation <= 0.12)
        off = finite & ~harmonic & ((deviation > 0.2) | (multiple > 4))
    return Fundamental(fundamental, harmonic, off, alternative)


#: windows of each band of rows whose power spectra are averaged into the plate's (for fit_lattice)
LATTICE_SAMPLE = 8
#: a peak of the plate's spectrum counts when it stands this many times above the median of its 9 x 9
#: bins and holds at least LATTICE_MIN_PEAK of the strongest peak's amplitude
LATTICE_PROMINENCE = 2.0
LATTICE_MIN_PEAK = 0.1
#: a pair of thread frequencies explains a peak within this many bins (or this fraction of its radius)
LATTICE_TOLERANCE_BINS = 1.0
LATTICE_TOLERANCE_FRACTION = 0.04
#: the windows' fundamentals stand unless the peaks they explain fall this short of the best pair's
LATTICE_SLACK = 0.1
#: ... and unless the fitted lattice explains at least this fraction of the peaks' power
LATTICE_MIN_EXPLAINED = 0.85
#: ... or at least LATTICE_MIN_SHARE of it and LATTICE_MIN_GAIN times what the windows' pair explains
LATTICE_MIN_SHARE = 0.5
LATTICE_MIN_GAIN = 2.0
#: a pair within LATTICE_SLACK still gives way when the peaks only the better pair explains hold at least
#: LATTICE_DISTINCT of the power and LATTICE_DISTINCT_GAIN times the power of the peaks only it explains
LATTICE_DISTINCT = 0.02
LATTICE_DISTINCT_GAIN = 2.0


#: a peak further than this sine of the angle from both frequency axes is off-axis: only the interlacing
#: of the two thread families puts power there (crossings u ± w, the checkerboard (u ± w) / 2)
OFF_AXIS_SINE = 0.25
#: an off-axis peak counts when a peak lies within this fraction of its radius of its mirror image across
#: the frequency axes (or within 2 bins)
OFF_AXIS_MIRROR = 0.15
#: off-axis peaks are weighed when they hold at least this share of the peaks' power
OFF_AXIS_MIN_SHARE = 0.02
#: the windows' pair gives way when it explains at most this share of the off-axis power and another pair
#: explains at least OFF_AXIS_FOUND of it (a lining's own crossings leave the windows' pair some)
OFF_AXIS_MISS = 0.1
OFF_AXIS_FOUND = 0.6
#: ... unless it explains at least this share of all the peaks' power (the off-axis ones at higher orders) and
#: is not a refinement of the new pair (:func:`_inside`). 0.95 read one plate of family B's former measuring draw
#: (seed0 200 000, hard) at a pair of strokes' "checkerboard" where the windows' pair explained 0.86; 0.85 keeps it
#: and loses 3 of the family C development plates the rule had fixed
OFF_AXIS_STANDS = 0.85
#: a pair whose own off-axis points beyond its double's hold at most this share of the power may be the half of
#: the weave's pair (:func:`_doubled`) ...
DOUBLE_LEFT = 0.02
#: ... and is, where the windows found none of the double's fundamentals, when both show with this share each
DOUBLE_SHOWN = 0.02


def _spectrum_peaks(power: np.ndarray, ppc: float, n: int, band: tuple[float, float]) -> tuple[np.ndarray,
                                                                                                np.ndarray]:
    """The strong narrow peaks of a plate's mean power spectrum (``(nk, n)``, ``[kx, kr mod n]``):
    positions ``(m, 2)`` as ``(f_x, f_row)`` in cycles/cm (one of each symmetric pair, f_x >= 0) and
    amplitudes ``(m,)``, strongest first."""
    from scipy import ndimage

    nk = power.shape[0]
    amp = np.sqrt(power)
    # the full plane around the origin, (kr, kx) centred, by Hermitian symmetry: |X(kr, -kx)| = |X(-kr, kx)|
    kr = np.arange(n) - n // 2
    kx = np.arange(-(nk - 1), nk)
    sign = np.where(kx < 0, -1, 1)
    full = amp[np.abs(kx)[None, :], (sign[None, :] * kr[:, None]) % n]
    radius = np.hypot(kr[:, None], kx[None, :]) * ppc / n
    local_max = full >= ndimage.maximum_filter(full, size=3, mode="nearest")
    peak = (local_max & (radius >= 2.5 * ppc / n) & (radius <= band[1])
            & ((kx[None, :] > 0) | ((kx[None, :] == 0) & (kr[:, None] > 0))))
    peak[0, :] = peak[-1, :] = False
    peak[:, 0] = peak[:, -1] = False
    r, x = np.nonzero(peak)
    # the median of the 9 x 9 bins around each local maximum only (a median filter of the whole plane
    # cost a tenth of a second per plate); edge bins repeat outwards, as ndimage's mode="nearest"
    around = sliding_window_view(np.pad(full, 4, mode="edge"), (9, 9))[r, x].reshape(r.size, 81)
    prominent = full[r, x] >= LATTICE_PROMINENCE * np.median(around, axis=1)
    r, x = r[prominent], x[prominent]
    a = full[r, x]
    if a.size == 0:
        return np.zeros((0, 2)), a
    keep = a >= LATTICE_MIN_PEAK * a.max()
    r, x, a = r[keep], x[keep], a[keep]
    # sub-bin position along each axis (the Hann three-point formula)
    fr = kr[r] + _hann_offset(full[r - 1, x], a, full[r + 1, x])
    fx = kx[x] + _hann_offset(full[r, x - 1], a, full[r, x + 1])
    order = np.argsort(-a)
    return np.stack([fx, fr], axis=1)[order] * ppc / n, a[order]


def _lattice_match(points: np.ndarray, u: np.ndarray, w: np.ndarray,
                   tol: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which peaks lie on the plain-weave lattice of each pair of thread vectors, and where.

    ``u``, ``w``: ``(q, 2)`` candidate frequency vectors of the vertical and the horizontal threads. A plain
    weave puts its peaks at ``(m u + n w) / 2`` with ``m + n`` even: the threads' frequencies, their
    harmonics and sums (a spot at every interstice), and the over/under checkerboard's half-way points.

    Returns ``(hit, m, n)``, each ``(q, peaks)``: on the lattice (within ``tol``), and the nearest point's
    indices."""
    det = u[:, 0] * w[:, 1] - u[:, 1] * w[:, 0]  # (q,)
    px, py = points[:, 0][None, :], points[:, 1][None, :]
    # coordinates of each peak in the basis (u / 2, w / 2)
    a = 2 * (px * w[:, 1, None] - py * w[:, 0, None]) / det[:, None]
    b = 2 * (u[:, 0, None] * py - u[:, 1, None] * px) / det[:, None]
    best = np.full(a.shape, np.inf)
    best_m, best_n = np.zeros(a.shape), np.zeros(a.shape)
    for da in (0.0, 1.0):
        for db in (0.0, 1.0):
            m, k = np.floor(a) + da, np.floor(b) + db
            qx = (m * u[:, 0, None] + k * w[:, 0, None]) / 2
            qy = (m * u[:, 1, None] + k * w[:, 1, None]) / 2
            dist = np.where((m + k) % 2 == 0, np.hypot(px - qx, py - qy), np.inf)
            closer = dist < best
            best = np.where(closer, dist, best)
            best_m, best_n = np.where(closer, m, best_m), np.where(closer, k, best_n)
    return best <= tol[None, :], best_m, best_n


def _explained(points: np.ndarray, amp: np.ndarray, u: np.ndarray, w: np.ndarray, tol: np.ndarray) -> np.ndarray:
    """Fraction of the peaks' power on the plain-weave lattice of each pair (:func:`_lattice_match`). Power,
    not amplitude: the weave's peaks are strong, while paint, exposure and noise add many weak ones that a
    fine enough lattice would explain too."""
    hit, _, _ = _lattice_match(points, u, w, tol)
    return (hit * amp[None, :] ** 2).sum(axis=1) / (amp ** 2).sum()


def _off_axis(points: np.ndarray, ppc: float, n: int) -> np.ndarray:
    """Which peaks only the interlacing of the two thread families can make: away from both frequency axes
    (further than :data:`OFF_AXIS_SINE`) and in mirror pairs across them (``u + w`` and ``u - w``, ``(u + w) / 2``
    and ``(u - w) / 2``). Paint strokes, slubs, banding and stretcher bars are one-dimensional and put their
    power on or near the axes, where it can outweigh a thread family's own peak; a stroke or a crack at an
    angle puts a single peak off them."""
    radius = np.hypot(points[:, 0], points[:, 1])
    off = np.minimum(np.abs(points[:, 0]), np.abs(points[:, 1])) > OFF_AXIS_SINE * radius
    mirror = np.hypot(points[:, 0][:, None] - points[:, 0][None, :], points[:, 1][:, None] + points[:, 1][None, :])
    return off & (mirror <= np.maximum(2 * ppc / n, OFF_AXIS_MIRROR * radius)[:, None]).any(axis=1)


def _inside(pick: tuple, now_uw: tuple[np.ndarray, np.ndarray]) -> bool:
    """Whether the lattice of ``pick`` (``(score, vertical, horizontal, eu, ew)``) lies inside that of the pair
    ``now_uw`` (its frequencies multiples of theirs): its generators ``(u ± w) / 2`` are points of the other."""
    _, pv, ph, pu, pw = pick
    gen = np.stack([pv * pu + ph * pw, pv * pu - ph * pw]) / 2
    gen = gen * np.where(gen[:, :1] < 0, -1.0, 1.0)
    return bool(_lattice_match(gen, now_uw[0][None, :], now_uw[1][None, :],
                               LATTICE_TOLERANCE_FRACTION * np.hypot(gen[:, 0], gen[:, 1]))[0][0].all())


def _crossings_decide(points: np.ndarray, tol: np.ndarray, off_axis: np.ndarray, pick: tuple, inside: bool,
                      current: dict[str, float]) -> bool:
    """Whether the pair ``pick`` (``(score, vertical, horizontal, eu, ew)``), which explains the off-axis peaks
    the windows' pair misses, replaces it. It does not when its lattice lies ``inside`` the windows' one (its
    frequencies are multiples of theirs, so the windows' pair explains every peak it does, at higher orders)
    and a frequency it changes shows nowhere on its own axis (at f or 2f)."""
    _, pv, ph, pu, pw = pick
    shown = True
    for f, now, e in ((pv, current["vertical"], pu), (ph, current["horizontal"], pw)):
        if abs(f - now) > HARMONIC_TOLERANCE * f:
            near = np.stack([f * e, 2 * f * e, -f * e, -2 * f * e])  # peaks are kept with f_x >= 0
            d = np.hypot(points[None, :, 0] - near[:, None, 0], points[None, :, 1] - near[:, None, 1])
            shown &= bool(((d <= 2 * tol[None, :]) & ~off_axis[None, :]).any())
    return bool(shown or not inside)


def _axis_power(points: np.ndarray, share: np.ndarray, off_axis: np.ndarray, f: float, e: np.ndarray,
                bin_: float) -> float:
    """The share of the peaks' power at frequency ``f`` along direction ``e`` (either sign), on the axes only:
    within :data:`LATTICE_TOLERANCE_BINS` bins or :data:`LATTICE_TOLERANCE_FRACTION` of ``f``; 0 when no peak."""
    near = np.stack([f * e, -f * e])
    d = np.hypot(points[None, :, 0] - near[:, None, 0], points[None, :, 1] - near[:, None, 1])
    on = ((d <= max(LATTICE_TOLERANCE_BINS * bin_, LATTICE_TOLERANCE_FRACTION * f)) & ~off_axis[None, :]).any(axis=0)
    return float(share[on].sum())


def _doubled(points: np.ndarray, power: np.ndarray, tol: np.ndarray, off_axis: np.ndarray, pair: tuple,
             hi: float, bin_: float, current: dict[str, float]) -> bool:
    """Whether the pair ``pair`` (``(vertical, horizontal, eu, ew)``) is the half of the weave's: ``(2 v, 2 h)``.

    The crossings ``u ± w`` of a pair are the checkerboard ``(U ± W) / 2`` of its double, so the off-axis peaks
    cannot tell the two apart when the pair's own points beyond its double's hold no power (at most
    :data:`DOUBLE_LEFT` of all of it: no checkerboard of its own). The axes then decide: the double when its
    fundamentals show at least as often as the pair's, and either a direction of the windows found one of them,
    or both show (each with at least :data:`DOUBLE_SHOWN` of the power) where one of the pair's does not. A
    stroke or a slub can sit near half a thread frequency and make the half pair explain more of the spectrum;
    an interstice lattice can hide the true fundamentals, so the double never wins on the off-axis peaks alone.
    """
    v, h, eu, ew = pair
    if 2 * v > hi or 2 * h > hi:
        return False
    share = power / power.sum()
    hit, _, _ = _lattice_match(points, np.stack([v * eu, 2 * v * eu]), np.stack([h * ew, 2 * h * ew]), tol)
    if share[off_axis & hit[0] & ~hit[1]].sum() > DOUBLE_LEFT:
        return False
    half = [_axis_power(points, share, off_axis, f, e, bin_) for f, e in ((v, eu), (h, ew))]
    double = [_axis_power(points, share, off_axis, 2 * f, e, bin_) for f, e in ((v, eu), (h, ew))]
    shown_half, shown_double = sum(p > 0 for p in half), sum(p > 0 for p in double)
    windows = any(abs(current[d] - 2 * f) <= HARMONIC_TOLERANCE * 2 * f
                  for d, f in (("vertical", v), ("horizontal", h)))
    return shown_double >= max(shown_half, 1) and (
        windows or (shown_double == 2 and shown_half <= 1 and min(double) >= DOUBLE_SHOWN))


@dataclass(frozen=True)
class Lattice:
    """What :func:`fit_lattice` found: the thread densities (threads/cm) whose lattice explains the plate
    spectrum's peaks, the frequency vectors ``u`` (vertical threads) and ``w`` (horizontal), ``(f_x, f_row)``
    in cycles/cm, least-squares fitted to those peaks, and the peaks used: positions ``(k, 2)``, lattice
    indices ``(k, 2)`` (``peak = (m u + n w) / 2``) and amplitudes, strongest first."""

    threads_per_cm: dict[str, float]
    u: np.ndarray
    w: np.ndarray
    points: np.ndarray
    indices: np.ndarray
    amplitude: np.ndarray


def _fit_vectors(points: np.ndarray, mn: np.ndarray, amp: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Least-squares ``u``, ``w`` from peaks at ``(m u + n w) / 2`` (amplitude-weighted); ``None`` when the
    peaks do not fix both."""
    design = mn / 2.0 * np.sqrt(amp)[:, None]
    if np.linalg.matrix_rank(design) < 2:
        return None
    sol, *_ = np.linalg.lstsq(design, points * np.sqrt(amp)[:, None], rcond=None)  # (2, 2): rows u, w
    return sol[0], sol[1]


def fit_lattice(power: np.ndarray, ppc: float, n: int, band: tuple[float, float],
                current: dict[str, float], angles: dict[str, float]) -> Lattice | None:
    """The pair of thread densities whose plain-weave lattice explains the plate's spectrum, when the
    windows' own fundamentals (``current``) do not.

    A window sees one peak per direction, near its axis; the plate's whole spectrum also holds the
    peaks off the axes. A plain weave of thread frequency vectors ``u`` (vertical threads) and ``w``
    (horizontal) puts them at ``(m u + n w) / 2`` with ``m + n`` even: the threads' harmonics ``m u``,
    a spot at every interstice (its sums ``u ± w``) and the over/under checkerboard (``(u ± w) / 2``).
    Interstice lattices can make ``2 u`` stronger than ``u`` on the axis, or leave ``u`` weak there;
    the diagonal peaks then still place ``u``: a double of the fundamental misses ``u ± w`` and the
    checkerboard, a half of it misses the checkerboard, a 1.5x misses nearly all of them.

    Candidates: the current densities, and each strong peak's coordinates along the two thread
    directions and their doubles (within ``band``). Each pair is scored by the fraction of the peaks'
    amplitude it explains. The current pair stands when it explains within :data:`LATTICE_SLACK` of the
    best pair; otherwise, of the pairs that do, the one of the highest frequencies (a half of each
    thread frequency explains every peak the true pair does: the coarsest lattice that explains the
    spectrum is the weave's). Its ``u``, ``w`` are then fitted to the peaks it explains, and it is used
    only when they explain at least :data:`LATTICE_MIN_EXPLAINED` of the peaks' power: a second weave
    (a lining canvas, a patch) leaves much of it to no single lattice, and the windows' reading stands.

    One rule comes first. Paint strokes, slubs and banding are one-dimensional: their power lies on the axes,
    where it can outweigh a thread family's own peak and win both the windows and the total score. Only the
    interlacing puts peaks off the axes in mirror pairs (:func:`_off_axis`). Where those hold at least
    :data:`OFF_AXIS_MIN_SHARE` of the power and the windows' pair explains at most :data:`OFF_AXIS_MISS` of
    them at low order (the checkerboard and the crossings, ``|m|, |n| <= 2``), the pair that explains most
    of them (at least :data:`OFF_AXIS_FOUND`; then by total score, then the coarsest) replaces it, unless
    the windows' pair explains :data:`OFF_AXIS_STANDS` of all the power (and the new lattice does not lie
    inside its own: a third of a thread frequency explains every peak) or :func:`_crossings_decide` says no.
    Conversely, a best pair that explains less of that off-axis power at low order than the windows' pair
    (by :data:`LATTICE_SLACK`) does not replace it: a half or a third of each thread frequency explains every
    peak, strokes on the axes too, but the crossings only at high order.
    Last, the pair chosen (the windows' own too) gives way to its double where :func:`_doubled` finds it the half
    of the weave's: its crossings are then the double's checkerboard, and a stroke near half a thread frequency
    had made it explain more.
    Developed on family C (seed 0) and family B's development draws; BENCHMARKS.md has the held-out figures.

    Args:
        power: mean power spectrum of windows, ``(nk, n)`` indexed ``[kx, kr mod n]``.
        ppc: px/cm; ``n``: window side in px; band: densities searched.
        current: ``{"horizontal": d, "vertical": d}`` from the windows (:func:`resolve_harmonics`).
        angles: the two directions' angles, degrees (the windows' median).

    Returns:
        a :class:`Lattice` to use instead, or ``None`` when the current pair stands (or the peaks it
        explains do not fix both thread vectors).
    """
    points, amp = _spectrum_peaks(power, ppc, n, band)
    if amp.size < 2:
        return None
    lo, hi = band
    radius = np.hypot(points[:, 0], points[:, 1])
    tol = np.maximum(LATTICE_TOLERANCE_BINS * ppc / n, LATTICE_TOLERANCE_FRACTION * radius)
    # the windows' angles, or none: where the windows saw mostly a weak or a leaked peak, their angle
    # can be off by a degree, which moves the sums u ± w by more than the tolerance
    options = [(np.radians(angles["vertical"]), np.radians(angles["horizontal"])), (0.0, 0.0)]
    best: tuple[float, float, float, np.ndarray, np.ndarray] | None = None  # score, vertical, horizontal, eu, ew
    score_now = 0.0
    now_uw: tuple[np.ndarray, np.ndarray] | None = None  # the windows' pair as vectors, at its best angles
    power = amp ** 2
    off_axis = _off_axis(points, ppc, n)
    off_share = float(power[off_axis].sum() / power.sum())
    crossing: tuple[float, float, float, np.ndarray, np.ndarray] | None = None  # best pair on the off-axis peaks
    crossing_now = 0.0  # the share of the off-axis power the windows' pair explains
    best_off = 0.0  # ... and the best pair
    for av, ah in options:
        eu = np.array([np.cos(av), -np.sin(av)])  # vertical threads' frequency direction (f_x, f_row)
        ew = np.array([np.sin(ah), np.cos(ah)])  # horizontal threads'
        coords = np.abs(np.linalg.solve(np.stack([eu, ew], axis=1), points.T).T)  # along (eu, ew)

        def candidates(values: np.ndarray, now: float) -> np.ndarray:
            c = np.concatenate([[now], values, 2 * values])
            c = np.sort(c[(c >= lo) & (c <= hi)])
            return np.unique(np.concatenate([[now], c[np.concatenate([[True], np.diff(c) > 0.005 * c[1:]])]]))

        gv, gh = np.meshgrid(candidates(coords[:, 0], current["vertical"]),
                             candidates(coords[:, 1], current["horizontal"]), indexing="ij")
        gv, gh = gv.ravel(), gh.ravel()
        hit, mm, nn = _lattice_match(points, gv[:, None] * eu, gh[:, None] * ew, tol)
        score = (hit * power[None, :]).sum(axis=1) / power.sum()
        # off the axes only the interlacing's own points count: the checkerboard and the crossings (|m|, |n| <= 2);
        # a finer lattice (a third or a half of a thread frequency) reaches them only at higher orders
        low = hit & (np.abs(mm) <= 2) & (np.abs(nn) <= 2)
        is_now = (gv == current["vertical"]) & (gh == current["horizontal"])
        now = float(score[is_now][0])
        on_off = (low * (power * off_axis)[None, :]).sum(axis=1) / max(power[off_axis].sum(), 1e-30)
        if off_share >= OFF_AXIS_MIN_SHARE:
            crossing_now = max(crossing_now, float(on_off[is_now][0]))
            top_off = on_off.max()
            ok = np.flatnonzero(on_off >= top_off - LATTICE_SLACK)
            ok = ok[score[ok] >= score[ok].max() - LATTICE_SLACK]
            pick_off = ok[np.lexsort((-score[ok], -(gv[ok] * gh[ok])))[0]]
            if crossing is None or top_off > crossing[0] + 1e-9:
                crossing = (float(top_off), float(gv[pick_off]), float(gh[pick_off]), eu, ew)
        if now_uw is None or now > score_now:
            score_now, now_uw = now, (current["vertical"] * eu, current["horizontal"] * ew)
        top = score.max()
        good = np.flatnonzero(score >= top - LATTICE_SLACK)
        pick = good[np.lexsort((-score[good], -(gv[good] * gh[good])))[0]]
        if best is None or top > best[0] + 1e-9 or (abs(top - best[0]) <= 1e-9 and
                                                     gv[pick] * gh[pick] > best[1] * best[2]):
            best = (float(top), float(gv[pick]), float(gh[pick]), eu, ew)
            best_off = float(on_off[pick])
    assert best is not None and now_uw is not None
    _, cv, ch, eu, ew = best
    forced = False
    if crossing is not None and crossing_now <= OFF_AXIS_MISS and crossing[0] >= OFF_AXIS_FOUND:
        inside = _inside(crossing, now_uw)
        forced = ((score_now < OFF_AXIS_STANDS or inside)
                  and _crossings_decide(points, tol, off_axis, crossing, inside, current))
    stands = False
    if forced:
        assert crossing is not None
        _, cv, ch, eu, ew = crossing
    elif off_share >= OFF_AXIS_MIN_SHARE and best_off < crossing_now - LATTICE_SLACK:
        stands = True  # the best pair explains fewer of the off-axis peaks at low order: a finer lattice's chance hits
    elif score_now >= best[0] - LATTICE_SLACK:
        # Within the slack the windows' pair stands, unless the two lattices differ (neither holds the
        # other) and the peaks only the best explains outweigh those only the windows' pair explains:
        # a thread frequency halved misses the checkerboard (u ± w) / 2, which the true pair explains,
        # and explains only points where the plate has no peak. A double (a coarser lattice, inside the
        # true one) explains nothing the true pair does not, so it never wins this way.
        share = power / power.sum()
        on_now = _lattice_match(points, now_uw[0][None, :], now_uw[1][None, :], tol)[0][0]
        on_best = _lattice_match(points, (cv * eu)[None, :], (ch * ew)[None, :], tol)[0][0]
        only_best, only_now = share[on_best & ~on_now].sum(), share[on_now & ~on_best].sum()
        if only_best < max(LATTICE_DISTINCT, LATTICE_DISTINCT_GAIN * only_now):
            stands = True
    if stands:
        cv, ch = current["vertical"], current["horizontal"]
        eu, ew = now_uw[0] / cv, now_uw[1] / ch
    if off_share >= OFF_AXIS_MIN_SHARE and _doubled(points, power, tol, off_axis, (cv, ch, eu, ew), hi, ppc / n,
                                                    current):
        cv, ch, forced = 2 * cv, 2 * ch, True  # the pair was the half of the weave's: its crossings the checkerboard
    elif stands:
        return None
    hit, m, k = _lattice_match(points, (cv * eu)[None, :], (ch * ew)[None, :], tol)
    hit = hit[0]
    mn = np.stack([m[0], k[0]], axis=1)[hit]
    fitted = _fit_vectors(points[hit], mn, amp[hit])
    if fitted is None:
        return None
    u, w = fitted
    if u[0] < 0:
        u = -u
    if w[1] < 0:
        w = -w
    explained = _explained(points, amp, u[None, :], w[None, :], tol)[0]
    enough = explained >= LATTICE_MIN_SHARE and explained >= LATTICE_MIN_GAIN * score_now
    if explained < LATTICE_MIN_EXPLAINED and not enough and not forced:
        # no one weave explains the spectrum (a lining, a patch) and the windows' pair explains as much
        # as half of what this lattice does: the windows' reading stands
        return None
    return Lattice({"vertical": float(np.hypot(*u)), "horizontal": float(np.hypot(*w))}, u, w,
                   points[hit], mn.astype(int), amp[hit])


def _neighbourhood_median(a: np.ndarray) -> np.ndarray:
    """NaN-aware median of each cell's 3×3 neighbourhood, the cell itself excluded."""
    padded = np.pad(a, 1, constant_values=np.nan)
    nb = sliding_window_view(padded, (3, 3)).reshape(a.shape + (9,)).copy()
    nb[..., 4] = np.nan
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmedian(nb, axis=-1)


def flag_outliers(density: np.ndarray, confidence: np.ndarray, *, min_confidence: float = MIN_CONFIDENCE,
                  outlier_threads_per_cm: float = OUTLIER_THREADS_PER_CM) -> np.ndarray:
    """Outlier mask of a density map: weak peaks (confidence below ``min_confidence``) and windows
    whose density departs from the median of their 3×3 neighbours by more than
    ``outlier_threads_per_cm`` or 5 robust standard deviations of such departures, whichever is larger."""
    outlier = ~np.isfinite(density) | (confidence < min_confidence)
    if density.size > 1:
        med = _neighbourhood_median(np.where(outlier, np.nan, density))
        dev = np.abs(density - med)
        finite = np.isfinite(dev)
        if finite.any():
            robust_sigma = 1.4826 * np.median(dev[finite])
            limit = max(outlier_threads_per_cm, 5.0 * robust_sigma)
            outlier |= finite & (dev > limit)
    return outlier


def _spectra(read_rows: Callable[[int, int], np.ndarray], geo: _Geometry,
             p: SpectralParams) -> Iterator[tuple[int, np.ndarray]]:
    """The spectra of the plate's windows, one band of rows at a time: ``(i, spec)`` with ``spec``
    ``(nx, nk, n)`` complex, indexed ``[window, kx, kr mod n]``."""
    g = geo.grid
    n = g.window_px
    taper = np.hanning(n + 1)[:-1].astype(np.float32)  # periodic Hann, applied along both axes
    stack = np.empty((g.nx, n, n), dtype=np.float32)
    for i in range(g.ny):
        top = g.y0 + i * g.step_px
        rows = read_rows(top, top + n)
        span = rows[:, g.x0: g.x0 + (g.nx - 1) * g.step_px + n]
        windows = sliding_window_view(span, n, axis=1)[:, :: g.step_px]  # (n, nx, n) view, no copy
        # The 2-D FFT in two passes, pruned: rows first (real FFT along x), keeping only the nk column
        # frequencies the search can reach, then columns. No mean subtraction: the periodic Hann
        # taper confines the mean to bins |k| <= 1, and the band starts at 2 bins or more.
        np.multiply(windows.transpose(1, 0, 2), taper, out=stack)
        half = scipy.fft.rfft(stack, axis=2, workers=p.workers)[:, :, : geo.nk]
        half = np.ascontiguousarray(half.transpose(0, 2, 1))  # (nx, nk, n)
        half *= taper
        yield i, scipy.fft.fft(half, axis=2, workers=p.workers, overwrite_x=True)


def _scan(
    read_rows: Callable[[int, int], np.ndarray],
    geo: _Geometry,
    p: SpectralParams,
    ppc: float,
    progress: Callable[[int, int], None] | None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """One pass over the plate's windows: ``maps[direction]`` is ``(3, ny, nx)``: density, angle and
    confidence per window; and the mean power spectrum ``(nk, n)`` (``[kx, kr mod n]``) of a sample
    of the windows (at most :data:`LATTICE_SAMPLE` per band of rows)."""
    g = geo.grid
    n = g.window_px
    maps = {d: np.full((3, g.ny, g.nx), np.nan, dtype=np.float64) for d in ("horizontal", "vertical")}
    # the plate's mean power spectrum, from at most LATTICE_SAMPLE windows of each band (for fit_lattice)
    sample = slice(None, None, max(1, -(-g.nx // LATTICE_SAMPLE)))
    power = np.zeros((geo.nk, n), dtype=np.float64)
    sampled = 0
    for i, spec in _spectra(read_rows, geo, p):
        chosen = spec[sample]
        power += (chosen.real.astype(np.float64) ** 2 + chosen.imag.astype(np.float64) ** 2).sum(axis=0)
        sampled += chosen.shape[0]
        for name, (dens, ang, conf) in _analyse_band(spec, geo, p, ppc).items():
            maps[name][0, i] = dens
            maps[name][1, i] = ang
            maps[name][2, i] = conf
        if progress is not None:
            progress(i + 1, g.ny)
    return maps, power / max(sampled, 1)


#: at most this many of the lattice's strongest peaks are measured in each window (:func:`_lattice_scan`)
LATTICE_PEAKS = 6


def _lattice_scan(read_rows: Callable[[int, int], np.ndarray], geo: _Geometry, p: SpectralParams, ppc: float,
                  lattice: Lattice) -> dict[str, np.ndarray] | None:
    """Both thread vectors of every window from the lattice's peaks: each of its strongest peaks is
    found in the window (the strongest bin within one bin of where the plate's spectrum has it, refined
    like the axis peaks), and ``u``, ``w`` are fitted to them by least squares (``peak = (m u + n w) / 2``).
    ``maps[direction]``: ``(3, ny, nx)`` density, angle, confidence (``1 - median / peak`` over the
    search sectors, the strongest of the peaks); ``None`` when the peaks kept do not fix both vectors."""
    g = geo.grid
    n, nk = g.window_px, geo.nk
    pts, mn, amp = lattice.points[:LATTICE_PEAKS], lattice.indices[:LATTICE_PEAKS], lattice.amplitude[:LATTICE_PEAKS]
    bins = pts * n / ppc  # (k, 2): (kx, kr)
    flip = np.where(bins[:, 0] < 0, -1.0, 1.0)  # measure the symmetric twin of a peak left of the axis
    bins = bins * flip[:, None]
    keep = np.rint(bins[:, 0]) <= nk - 2
    pts, mn, amp, bins, flip = pts[keep], mn[keep], amp[keep], bins[keep], flip[keep]
    design = mn / 2.0 * np.sqrt(amp)[:, None]
    if np.linalg.matrix_rank(design) < 2:
        return None
    solve = np.linalg.pinv(design) * np.sqrt(amp)[None, :]  # (2, k): (u, w) = solve @ peaks
    x0, r0 = np.rint(bins[:, 0]).astype(int), np.rint(bins[:, 1]).astype(int)
    sectors = np.concatenate(list(geo.sectors.values()))
    maps = {d: np.full((3, g.ny, g.nx), np.nan, dtype=np.float64) for d in ("horizontal", "vertical")}
    for i, spec in _spectra(read_rows, geo, p):
        m = spec.shape[0]
        rows = np.arange(m)[:, None]

        def mag(r: np.ndarray, x: np.ndarray, spec: np.ndarray = spec, rows: np.ndarray = rows) -> np.ndarray:
            # |X(kr, -kx)| = |X(-kr, kx)| for a real window
            return np.abs(spec[rows, np.abs(x), np.where(x < 0, -r, r) % n])

        best = np.full((m, len(x0)), -1.0)
        br, bx = np.zeros(best.shape, int), np.zeros(best.shape, int)
        for dr in (-1, 0, 1):
            for dx in (-1, 0, 1):
                rr, xx = np.broadcast_to(r0 + dr, best.shape), np.broadcast_to(x0 + dx, best.shape)
                v = mag(rr, xx)
                better = v > best
                best, br, bx = np.where(better, v, best), np.where(better, rr, br), np.where(better, xx, bx)
        fr = br + _hann_offset(mag(br - 1, bx), best, mag(br + 1, bx))
        fx = bx + _hann_offset(mag(br, bx - 1), best, mag(br, bx + 1))
        found = np.stack([fx, fr], axis=-1) * flip[None, :, None] * ppc / n  # (m, k, 2)
        uw = np.einsum("jk,mkc->mjc", solve, found)  # (m, 2, 2): u, w
        u, w = uw[:, 0], uw[:, 1]
        u = u * np.where(u[:, :1] < 0, -1.0, 1.0)
        w = w * np.where(w[:, 1:] < 0, -1.0, 1.0)
        background = np.median(np.abs(spec.reshape(m, -1)[:, sectors]), axis=1)
        conf = np.clip(1.0 - background / np.maximum(best.max(axis=1), 1e-30), 0.0, 1.0)
        maps["vertical"][:, i] = np.hypot(u[:, 0], u[:, 1]), np.degrees(np.arctan2(-u[:, 1], u[:, 0])), conf
        maps["horizontal"][:, i] = np.hypot(w[:, 0], w[:, 1]), np.degrees(np.arctan2(w[:, 0], w[:, 1])), conf
    return maps


def count_threads_spectral(
    plate: Plate | np.ndarray,
    params: SpectralParams | None = None,
    *,
    px_per_cm: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ThreadCountResult:
    """Thread densities and angles of a canvas X-ray by windowed 2-D spectral analysis.

    Args:
        plate: a :class:`~artlens.io.Plate` (read band by band, so plates larger than memory
            work) or a 2-D array (then ``px_per_cm`` is required).
        params: :class:`SpectralParams`; defaults to a 1.0 cm window every 0.5 cm, 5–40 threads/cm.
        px_per_cm: resolution, px/cm; overrides the plate's own.
        progress: called as ``progress(done_rows, total_rows)`` after each band of windows.

    Returns:
        :class:`~artlens.canvas.threads.result.ThreadCountResult` with maps of shape ``(ny, nx)``.

    Units:
        densities in threads/cm, angles in degrees (counter-clockwise positive), positions in cm.

    Example:
        >>> import numpy as np
        >>> y = np.arange(400)[:, None] + np.zeros((1, 400))
        >>> grating = np.cos(2 * np.pi * 12.0 * y / 200.0)  # 12 threads/cm at 200 px/cm
        >>> r = count_threads_spectral(grating, px_per_cm=200.0)
        >>> round(r.horizontal.stats()["threads_per_cm"]["mean"], 2)
        12.0
    """
    p = params or SpectralParams()
    p.validate()
    src = plate_source(plate, px_per_cm)
    ppc, shape = src.px_per_cm, src.shape
    geo = _geometry(shape, ppc, p)
    maps, power = _scan(src.rows, geo, p, ppc, progress)

    fundamentals: dict[str, Fundamental] = {}
    if p.resolve_fundamental:
        confident = {name: m[2] >= p.min_confidence for name, m in maps.items()}
        for name, (dens, _, _) in maps.items():
            fundamentals[name] = resolve_harmonics(dens, confident=confident[name])
        current = {name: f.threads_per_cm for name, f in fundamentals.items()}
        if all(v is not None for v in current.values()):
            angles = {}
            for name, (_, ang, _) in maps.items():
                a = ang[confident[name] & np.isfinite(ang)]
                angles[name] = float(np.median(a)) if a.size else 0.0
            lattice = fit_lattice(power, ppc, geo.grid.window_px, p.band,
                                  {k: float(v) for k, v in current.items() if v is not None}, angles)
            moved = [name for name in maps if lattice is not None
                     and abs(lattice.threads_per_cm[name] - float(current[name] or 0.0))
                     > HARMONIC_TOLERANCE * lattice.threads_per_cm[name]]
            remeasured = _lattice_scan(src.rows, geo, p, ppc, lattice) if lattice is not None and moved else None
            for name in moved:
                if remeasured is None:
                    break
                # the windows measured the lattice's peaks instead of their axis peak: both vectors
                before, conf_before = maps[name][0].copy(), confident[name]
                maps[name] = remeasured[name]
                dens, conf = maps[name][0], maps[name][2]
                ok = np.isfinite(dens) & (conf >= p.min_confidence)
                if not ok.any():
                    ok = np.isfinite(dens)
                fundamental = float(np.median(dens[ok]))
                finite = np.isfinite(before)
                with np.errstate(invalid="ignore"):
                    off = np.isfinite(dens) & (np.abs(dens - fundamental) > 0.2 * fundamental)
                d_before = before[finite & conf_before] if (finite & conf_before).any() else before[finite]
                fundamentals[name] = Fundamental(fundamental, finite & ~_support(before, dens), off,
                                                 _alternative(d_before, fundamental), lattice=True)
            for name in moved if remeasured is None else []:
                assert lattice is not None
                fund = resolve_harmonics(maps[name][0], confident=confident[name],
                                         near=lattice.threads_per_cm[name])
                if fund.threads_per_cm is not None:
                    fundamentals[name] = fund
        for name, (dens, _, _) in maps.items():
            fund = fundamentals[name]
            if fund.threads_per_cm is None:
                del fundamentals[name]
                continue
            if fund.lattice:
                continue
            # A window at k times the fundamental measured its k-th harmonic: same angle, density / k.
            multiple = np.rint(dens / fund.threads_per_cm)
            fund.harmonic[...] &= dens / np.where(fund.harmonic, multiple, 1.0) >= p.band[0]
            dens[fund.harmonic] /= multiple[fund.harmonic]
            fundamentals[name] = fund
    directions = {}
    for name, (dens, ang, conf) in maps.items():
        found = fundamentals.get(name)
        outlier = flag_outliers(dens, conf, min_confidence=p.min_confidence,
                                outlier_threads_per_cm=p.outlier_threads_per_cm) | (found.off if found else False)
        directions[name] = DirectionMaps(
            dens, ang, conf, outlier,
            corrected=(found.harmonic if found else np.zeros(dens.shape, bool)) if p.resolve_fundamental else None,
            alternative=found.alternative if found else None)

    g = geo.grid
    parameters = asdict(p)
    parameters["band"] = list(p.band)
    parameters["taper"] = "hann (periodic)"
    parameters["window_px"] = g.window_px
    parameters["step_px"] = g.step_px
    return ThreadCountResult(
        method="spectral",
        px_per_cm=ppc,
        window_cm=p.window_cm,
        step_cm=p.step_cm,
        x_cm=g.x_cm,
        y_cm=g.y_cm,
        horizontal=directions["horizontal"],
        vertical=directions["vertical"],
        plate_shape_px=shape,
        parameters=parameters,
    )
