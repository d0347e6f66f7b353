"""Density-map matching: are two canvases cut from one roll, and how do they lie on it?

The warp threads of a roll run its whole length with a fixed sequence of spacings, so the
thread-density map of a canvas shows stripes parallel to the warp. The *warp profile* -- the density
of the warp threads averaged along them, as a function of the position across them (cm) -- is a
fingerprint of the stretch of roll the canvas was cut from. Two canvases that share warp threads
(cut one after the other along the roll, overlapping across its width) have profiles that coincide
after a shift; conservators correlate them to establish "same roll" and the relative position
(Johnson et al. 2010; Johnson & Sethares 2017).

:func:`match_density_maps` aligns the profiles of two :class:`ThreadCountResult` maps over every
shift, the 8 orientations of plate B (rotations by 0/90/180/270 degrees, each with and without a
left-right flip) and a small scale tolerance, scoring each alignment by the Pearson correlation over
the overlap (maximising its Fisher z-score, so long overlaps are preferred), and
measures the significance of the best correlation against phase-randomised surrogates of B's
profiles put through the very same search (so the p-value accounts for every shift, orientation and
scale tried). :func:`density_match_figure` overlays the aligned profiles.

Conventions (DESIGN.md): ``vertical`` threads run top-bottom in the displayed image and their density
is counted along x; ``horizontal`` threads run left-right, counted along y. Positions are cm from the
plate's top-left corner, y down. Orientation ``"rotK"`` means ``numpy.rot90(B, K // 90)`` (K degrees
counter-clockwise as displayed); ``"flip-rotK"`` means ``numpy.rot90(numpy.fliplr(B), K // 90)``: the
transform that, applied to B's image, brings it into A's frame (:func:`apply_orientation`).

References:
    Johnson, C. R., Johnson, D. H., Hamashima, N., Yang, H. S. and Hendriks, E. (2010). Weave
    matching and the thread-count features of canvas rolls. In *Vincent van Gogh: The Yellow
    House*, Van Gogh Museum.

    Johnson, C. R. Jr. and Sethares, W. A. (2017). *Counting Vermeer: Using Weave Maps to Study
    Vermeer's Canvases*. RKD Studies.

    Theiler, J., Eubank, S., Longtin, A., Galdrikian, B. and Farmer, J. D. (1992). Testing for
    nonlinearity in time series: the method of surrogate data. Physica D 58, 77-94 (phase
    randomisation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from scipy.signal import fftconvolve

from artlens.canvas.threads.result import DIRECTIONS, DirectionMaps, ThreadCountResult
from artlens.errors import InvalidParameterError

if TYPE_CHECKING:  # matplotlib is imported only when a figure is drawn
    from matplotlib.figure import Figure

__all__ = [
    "ORIENTATIONS",
    "DensityMatch",
    "apply_orientation",
    "density_match_figure",
    "density_profile",
    "inverse_orientation",
    "match_density_maps",
    "orient_result",
    "warp_direction",
]

ORIENTATIONS = (
    "rot0",
    "rot90",
    "rot180",
    "rot270",
    "flip-rot0",
    "flip-rot90",
    "flip-rot180",
    "flip-rot270",
)
"""The 8 orientations of a rectangular plate: ``rotK`` = ``numpy.rot90(img, K // 90)``,
``flip-rotK`` = ``numpy.rot90(numpy.fliplr(img), K // 90)``."""

_AXIS = {"vertical": "x", "horizontal": "y"}  # the image axis each family is counted along
_OTHER = {"vertical": "horizontal", "horizontal": "vertical"}

WarpChoice = Literal["either", "auto", "vertical", "horizontal"]


# --------------------------------------------------------------------------------------------------
# Orientations
# --------------------------------------------------------------------------------------------------


def _parse_orientation(name: str) -> tuple[int, bool]:
    if name not in ORIENTATIONS:
        raise InvalidParameterError(f"orientation must be one of {', '.join(ORIENTATIONS)}; got {name!r}")
    flip = name.startswith("flip-")
    return int(name.removeprefix("flip-").removeprefix("rot")) // 90, flip


def apply_orientation(image: np.ndarray, name: str) -> np.ndarray:
    """Transform a 2-D array (an image or a map) by an orientation of :data:`ORIENTATIONS`.

    Example:
        >>> a = np.arange(6).reshape(2, 3)
        >>> apply_orientation(a, "rot90").tolist()
        [[2, 5], [1, 4], [0, 3]]
        >>> apply_orientation(a, "flip-rot0").tolist()
        [[2, 1, 0], [5, 4, 3]]
    """
    k, flip = _parse_orientation(name)
    out = np.fliplr(image) if flip else image
    return np.rot90(out, k)


def inverse_orientation(name: str) -> str:
    """The orientation that undoes ``name``: flips are their own inverse, ``rotK`` -> ``rot(360-K)``.

    Example:
        >>> inverse_orientation("rot90"), inverse_orientation("flip-rot90")
        ('rot270', 'flip-rot90')
    """
    k, flip = _parse_orientation(name)
    return name if flip else f"rot{(-k % 4) * 90}"


def _transform_points(
    y: np.ndarray, x: np.ndarray, height: float, width: float, name: str
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Positions (cm) of points after the orientation; returns ``(y', x', height', width')``."""
    k, flip = _parse_orientation(name)
    if flip:
        x = width - x
    for _ in range(k):  # numpy.rot90 once: new[i, j] = old[j, W - 1 - i]
        y, x, height, width = width - x, y, width, height
    return y, x, height, width


def _family_after(name: str, family: str) -> tuple[str, bool]:
    """Which family an original thread family becomes in the oriented plate, and whether its
    across-thread coordinate is reversed."""
    k, flip = _parse_orientation(name)
    reversed_ = False
    if flip and family == "vertical":
        reversed_ = True
    for _ in range(k):
        if family == "vertical":  # across coordinate x becomes y' = W - x
            family, reversed_ = "horizontal", not reversed_
        else:  # across coordinate y becomes x' = y
            family = "vertical"
    return family, reversed_


def _source_family(name: str, family: str) -> tuple[str, bool]:
    """The original family of B that shows as ``family`` after orientation ``name``, and whether it
    is reversed."""
    for g in DIRECTIONS:
        f, rev = _family_after(name, g)
        if f == family:
            return g, rev
    raise AssertionError("unreachable")  # pragma: no cover


def _partner(name: str, family: str) -> str:
    """The orientation that differs from ``name`` by a flip along ``family``'s threads: it leaves the
    profile across ``family`` unchanged, so the two are told apart only by the other family."""
    probe = np.arange(12).reshape(3, 4)
    flipped = apply_orientation(probe, name)
    flipped = np.flipud(flipped) if family == "vertical" else np.fliplr(flipped)
    for other in ORIENTATIONS:
        t = apply_orientation(probe, other)
        if t.shape == flipped.shape and np.array_equal(t, flipped):
            return other
    raise AssertionError("unreachable")  # pragma: no cover


def orient_result(result: ThreadCountResult, name: str) -> ThreadCountResult:
    """The thread-count maps of the plate transformed by orientation ``name``.

    Maps are rotated/flipped like the image; on 90/270 degree rotations the horizontal and vertical
    maps swap; a flip negates the thread angles (rotations keep them). Window centres are moved to
    the new plate frame, so ``x_cm``/``y_cm`` stay cm from the oriented plate's top-left corner.
    """
    k, flip = _parse_orientation(name)
    height = result.plate_shape_px[0] / result.px_per_cm
    width = result.plate_shape_px[1] / result.px_per_cm
    yy, xx = np.meshgrid(np.asarray(result.y_cm, float), np.asarray(result.x_cm, float), indexing="ij")
    ny, nx, _, _ = _transform_points(yy, xx, height, width, name)
    ny, nx = apply_orientation(ny, name), apply_orientation(nx, name)

    def maps(m: DirectionMaps) -> DirectionMaps:
        angle = apply_orientation(m.angle, name)
        return DirectionMaps(
            density=apply_orientation(m.density, name).copy(),
            angle=(-angle if flip else angle).copy(),
            confidence=apply_orientation(m.confidence, name).copy(),
            outlier=apply_orientation(m.outlier, name).copy(),
        )

    h, v = maps(result.horizontal), maps(result.vertical)
    if k % 2:
        h, v = v, h
    shape = result.plate_shape_px if k % 2 == 0 else result.plate_shape_px[::-1]
    return replace(
        result,
        x_cm=nx[0, :].copy(),
        y_cm=ny[:, 0].copy(),
        horizontal=h,
        vertical=v,
        plate_shape_px=(int(shape[0]), int(shape[1])),
        parameters={**result.parameters, "orientation": name},
    )


# --------------------------------------------------------------------------------------------------
# Profiles and the warp
# --------------------------------------------------------------------------------------------------


def _valid_density(m: DirectionMaps) -> np.ndarray:
    d = np.asarray(m.density, dtype=np.float64)
    return np.where(np.isfinite(d) & ~np.asarray(m.outlier, bool), d, np.nan)


def density_profile(
    result: ThreadCountResult, direction: str, min_valid_fraction: float = 0.3
) -> tuple[np.ndarray, np.ndarray]:
    """Density of one thread family averaged along its threads, as a function of the position
    across them.

    For ``vertical`` threads this is the mean over rows of the vertical-density map, against the
    window centres ``x_cm``; for ``horizontal`` threads the mean over columns against ``y_cm``.
    Outlier and no-peak windows are left out; a line with fewer than ``min_valid_fraction`` of its
    windows valid gives NaN.

    Returns:
        ``(position_cm, threads_per_cm)``, both 1-D.
    """
    if direction not in DIRECTIONS:
        raise InvalidParameterError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    d = _valid_density(result.direction(direction))
    axis = 0 if direction == "vertical" else 1  # average along the threads
    ok = np.isfinite(d)
    n_ok = ok.sum(axis=axis)
    total = np.where(ok, d, 0.0).sum(axis=axis)
    need = max(1, math.ceil(min_valid_fraction * d.shape[axis]))
    prof = np.where(n_ok >= need, total / np.maximum(n_ok, 1), np.nan)
    pos = np.asarray(result.x_cm if direction == "vertical" else result.y_cm, dtype=np.float64)
    return pos.copy(), prof


def warp_direction(result: ThreadCountResult) -> tuple[str | None, dict[str, float]]:
    """Which thread family looks like the warp: the one with the stronger stripe structure.

    Criterion: for each family, the *stripe index* is the relative spread of its profile across the
    threads (std of :func:`density_profile` / mean density) divided by the relative spread of the
    density along the threads (root mean within-line variance / mean density). Warp threads keep
    their individual spacing along the whole length of the roll, so their density is nearly constant
    along the threads and varies across them; weft density is less regular (Johnson et al. 2010).
    The family with the larger index is returned.

    Returns:
        ``(direction or None, {"vertical": index, "horizontal": index})``; ``None`` when neither
        family has enough valid windows.
    """
    scores: dict[str, float] = {}
    for name in DIRECTIONS:
        d = _valid_density(result.direction(name))
        axis = 0 if name == "vertical" else 1
        _, prof = density_profile(result, name)
        if np.isfinite(prof).sum() < 3:
            scores[name] = float("nan")
            continue
        mean = np.nanmean(d)
        with np.errstate(invalid="ignore", divide="ignore"), _quiet():
            within = math.sqrt(float(np.nanmean(np.nanvar(d, axis=axis))))
        between = float(np.nanstd(prof))
        scores[name] = (between / mean) / max(within / mean, 1e-6)
    finite = {k: v for k, v in scores.items() if math.isfinite(v)}
    if not finite:
        return None, scores
    return max(finite, key=lambda k: finite[k]), scores


class _quiet:
    """Silence numpy's 'mean of empty slice' warnings for all-NaN lines."""

    def __enter__(self) -> None:
        import warnings

        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._cm.__exit__(exc_type, exc, tb)


# --------------------------------------------------------------------------------------------------
# Correlation over all lags
# --------------------------------------------------------------------------------------------------


def _ncc_all_lags(a: np.ndarray, b: np.ndarray, min_n: int) -> tuple[np.ndarray, np.ndarray]:
    """Pearson correlation of ``a`` (n,) with every row of ``b`` (..., m) at every lag.

    Lag ``L`` pairs ``a[i + L]`` with ``b[i]``; lags run from ``-(m - 1)`` to ``n - 1`` (index
    ``L + m - 1``). NaNs are missing samples. Lags with fewer than ``min_n`` common valid samples
    give NaN. Returns ``(r, n)`` of shape ``(..., n + m - 1)``.
    """
    wa = np.isfinite(a).astype(np.float64)
    wb = np.isfinite(b).astype(np.float64)
    a0 = np.where(wa > 0, a - np.nanmean(a), 0.0)
    b0 = np.where(wb > 0, b - np.nanmean(b, axis=-1, keepdims=True), 0.0)
    shape = (1,) * (b.ndim - 1) + (a.size,)
    A = np.stack([wa, a0, a0 * a0]).reshape((3,) + shape)

    def corr(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return fftconvolve(x, y[..., ::-1], mode="full", axes=-1)

    n = np.rint(corr(A[0], wb))
    sa = corr(A[1], wb)
    saa = corr(A[2], wb)
    sb = corr(A[0], b0)
    sbb = corr(A[0], b0 * b0)
    sab = corr(A[1], b0)
    with np.errstate(invalid="ignore", divide="ignore"):
        nn = np.maximum(n, 1.0)
        cov = sab - sa * sb / nn
        va = saa - sa * sa / nn
        vb = sbb - sb * sb / nn
        r = cov / np.sqrt(va * vb)
    bad = (n < min_n) | ~(va > 1e-12) | ~(vb > 1e-12)
    r = np.where(bad, np.nan, np.clip(r, -1.0, 1.0))
    return r, n


def _score(r: np.ndarray, n: np.ndarray, kind: str) -> np.ndarray:
    """The statistic maximised over alignments: ``r`` itself, or its Fisher z-score
    ``atanh(r) * sqrt(n - 3)``, which prefers a long overlap to an equally good short one."""
    if kind == "r":
        return r
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.arctanh(np.clip(r, -0.999999, 0.999999)) * np.sqrt(np.maximum(n - 3.0, 0.0))


def _phase_surrogates(values: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` surrogates of a profile with its amplitude spectrum and linear trend, random phases.

    Missing samples are filled by linear interpolation for the Fourier transform and are missing
    again in the surrogates.
    """
    ok = np.isfinite(values)
    idx = np.arange(values.size, dtype=np.float64)
    filled = np.interp(idx, idx[ok], values[ok])
    coef = np.polyfit(idx, filled, 1)
    trend = np.polyval(coef, idx)
    spec = np.fft.rfft(filled - trend)
    phases = rng.uniform(0.0, 2.0 * np.pi, size=(n, spec.size))
    phases[:, 0] = 0.0
    if values.size % 2 == 0:
        phases[:, -1] = 0.0  # the Nyquist term stays real
    sur = np.fft.irfft(np.abs(spec) * np.exp(1j * phases), n=values.size, axis=-1) + trend
    sur[:, ~ok] = np.nan
    return sur


# --------------------------------------------------------------------------------------------------
# The result
# --------------------------------------------------------------------------------------------------


@dataclass
class DensityMatch:
    """Best alignment of plate B onto plate A by their thread-density profiles.

    Attributes:
        correlation: Pearson r of the warp profiles over the overlap at the best alignment.
        p_value: fraction of phase-randomised surrogates of B's profiles whose best score (the
            statistic maximised, see ``score``), over the same families, shifts, orientations and
            scales, reaches the observed one (with +1 in numerator and denominator, so never 0).
        offset_cm: ``(dx, dy)``: ``dx`` = position (cm) of oriented B's origin in A's frame measured
            across A's warp threads (along the warp profile); ``dy`` = the same across the weft
            threads, from the weft-profile alignment -- meaningful only when ``weft_p_value`` is
            small (pieces cut along the roll share no weft threads).
        orientation: transform of :data:`ORIENTATIONS` that brings B's image into A's frame.
        orientation_alternative: the orientation that differs by a flip along the warp threads; the
            warp profile cannot tell the two apart, the weft profile decides between them.
        orientation_resolved: whether the weft alignment is significant (``weft_p_value < 0.05``),
            i.e. whether the choice between ``orientation`` and its alternative is supported.
        scale: stretch applied to B's positions (``x_A = scale * x_B + dx``).
        overlap_cm: length of the overlap of the warp profiles (valid samples x grid step).
        offset_xy_cm: ``(x, y)`` position (cm) of oriented B's top-left corner in A's image frame.
        warp_a, warp_b: warp family of each plate by :func:`warp_direction` (in its own frame).
        warp_scores_a, warp_scores_b: the stripe indices behind that decision.
        matched_direction_a: A's family whose profile gave the best alignment (A's warp used).
        matched_direction_b: B's family (in B's own frame) aligned onto it.
        weft_correlation, weft_p_value, weft_overlap_cm: the same for the other family, at the
            chosen orientation and scale (shifts only).
        n_shifts_tested: (profile, orientation class, scale, shift) combinations with enough overlap.
        n_permutations: surrogates in the null distribution.
        grid_cm: sampling step of the common profile grid.
        notes: remarks for the user (e.g. profiles resampled because px/cm or steps differ).
        profiles: arrays for :func:`density_match_figure` (positions in A's frame).
    """

    correlation: float
    p_value: float
    offset_cm: tuple[float, float]
    orientation: str
    orientation_alternative: str
    orientation_resolved: bool
    scale: float
    overlap_cm: float
    offset_xy_cm: tuple[float, float]
    warp_a: str | None
    warp_b: str | None
    warp_scores_a: dict[str, float]
    warp_scores_b: dict[str, float]
    matched_direction_a: str
    matched_direction_b: str
    weft_correlation: float | None
    weft_p_value: float | None
    weft_overlap_cm: float
    n_shifts_tested: int
    n_permutations: int
    grid_cm: float
    notes: list[str] = field(default_factory=list)
    profiles: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: the contract fields ``correlation``, ``p_value``, ``offset_cm``,
        ``orientation`` plus the extras (profiles left out)."""

        def num(x: float | None, nd: int = 4) -> float | None:
            return None if x is None or not math.isfinite(x) else round(float(x), nd)

        return {
            "correlation": num(self.correlation),
            "p_value": num(self.p_value, 6),
            "offset_cm": [num(self.offset_cm[0]), num(self.offset_cm[1])],
            "orientation": self.orientation,
            "orientation_alternative": self.orientation_alternative,
            "orientation_resolved": bool(self.orientation_resolved),
            "scale": num(self.scale),
            "overlap_cm": num(self.overlap_cm),
            "offset_xy_cm": [num(self.offset_xy_cm[0]), num(self.offset_xy_cm[1])],
            "warp_a": self.warp_a,
            "warp_b": self.warp_b,
            "warp_scores_a": {k: num(v) for k, v in self.warp_scores_a.items()},
            "warp_scores_b": {k: num(v) for k, v in self.warp_scores_b.items()},
            "matched_direction_a": self.matched_direction_a,
            "matched_direction_b": self.matched_direction_b,
            "weft_correlation": num(self.weft_correlation),
            "weft_p_value": num(self.weft_p_value, 6),
            "weft_overlap_cm": num(self.weft_overlap_cm),
            "n_shifts_tested": int(self.n_shifts_tested),
            "n_permutations": int(self.n_permutations),
            "grid_cm": num(self.grid_cm),
            "notes": list(self.notes),
        }


# --------------------------------------------------------------------------------------------------
# Matching
# --------------------------------------------------------------------------------------------------


@dataclass
class _Profile:
    pos: np.ndarray  # cm, increasing, in the plate's own frame
    val: np.ndarray
    extent: float  # plate size along this axis, cm


def _on_grid(pos: np.ndarray, val: np.ndarray, h: float) -> tuple[float, np.ndarray]:
    """Resample a profile onto a grid of step ``h`` from its first position; NaN stays missing."""
    n = int(math.floor((pos[-1] - pos[0]) / h + 1e-9)) + 1
    grid = pos[0] + h * np.arange(n)
    if pos.size == grid.size and np.allclose(pos, grid, atol=1e-9):
        return float(pos[0]), val.astype(np.float64).copy()
    return float(pos[0]), np.interp(grid, pos, val)


def _oriented(p: _Profile, rev: bool, values: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    v = p.val if values is None else values
    if not rev:
        return p.pos, v
    return (p.extent - p.pos)[::-1], v[..., ::-1]


def _scaled(pos: np.ndarray, val: np.ndarray, s: float, h: float) -> tuple[float, np.ndarray]:
    """B's profile stretched by ``s``, on a grid of step ``h`` in A's units; ``val`` may be (k, m)."""
    n = int(math.floor(s * (pos[-1] - pos[0]) / h + 1e-9)) + 1
    src = pos[0] + h * np.arange(n) / s
    if val.ndim == 1:
        return s * float(pos[0]), np.interp(src, pos, val)
    return s * float(pos[0]), np.stack([np.interp(src, pos, row) for row in val])


def _check_result(r: ThreadCountResult, label: str) -> None:
    if not isinstance(r, ThreadCountResult):
        raise InvalidParameterError(f"plate {label}: expected a ThreadCountResult, got {type(r).__name__}")
    if not (r.px_per_cm > 0 and r.step_cm > 0):
        raise InvalidParameterError(f"plate {label}: px_per_cm and step_cm must be positive")
    if not any(np.isfinite(_valid_density(r.direction(d))).any() for d in DIRECTIONS):
        raise InvalidParameterError(f"plate {label} has no valid density windows in either direction")


def _profile(r: ThreadCountResult, family: str) -> _Profile:
    pos, val = density_profile(r, family)
    extent = (r.plate_shape_px[1] if family == "vertical" else r.plate_shape_px[0]) / r.px_per_cm
    return _Profile(pos, val, extent)


def _refine(r_row: np.ndarray, j: int) -> float:
    """Sub-sample offset of a correlation peak by a parabola through its neighbours (in samples)."""
    if 0 < j < r_row.size - 1 and np.isfinite(r_row[j - 1]) and np.isfinite(r_row[j + 1]):
        den = r_row[j - 1] - 2 * r_row[j] + r_row[j + 1]
        if den < 0:
            return float(np.clip(0.5 * (r_row[j - 1] - r_row[j + 1]) / den, -0.5, 0.5))
    return 0.0


def match_density_maps(
    a: ThreadCountResult,
    b: ThreadCountResult,
    *,
    warp: WarpChoice = "either",
    orientations: tuple[str, ...] = ORIENTATIONS,
    scale_tolerance: float = 0.02,
    n_scales: int = 5,
    min_overlap_cm: float = 2.0,
    min_overlap_samples: int = 8,
    grid_cm: float | None = None,
    n_permutations: int = 999,
    score: Literal["z", "r"] = "z",
    seed: int = 0,
) -> DensityMatch:
    """Align plate B's thread-density profiles onto plate A's and measure the significance.

    Args:
        a, b: thread-count maps of the two plates (any method; the step and px/cm may differ: the
            profiles are resampled onto a common grid in cm).
        warp: which of A's families is aligned as the warp. ``"either"`` (default) tries both and
            keeps the better, the null distribution taking the same maximum; ``"auto"`` uses
            :func:`warp_direction` (fewer hypotheses, but a wrong call loses the match);
            ``"vertical"``/``"horizontal"`` force it.
        orientations: orientations of B searched (default all 8).
        scale_tolerance: largest relative stretch of B tried (0.02 = +-2 %), in ``n_scales`` steps.
        min_overlap_cm, min_overlap_samples: an alignment counts only when the profiles overlap over
            at least this length and this many valid grid samples.
        grid_cm: step of the common grid (default: the larger of the two ``step_cm``).
        n_permutations: surrogates for the p-value (0 skips it: ``p_value`` is NaN).
        score: what the search maximises: ``"z"`` (default), the Fisher z-score
            ``atanh(r) * sqrt(n - 3)`` of the correlation over ``n`` overlapping samples, so that a long
            overlap beats a slightly better short one (short overlaps of smooth profiles correlate
            easily by chance); or ``"r"``, the plain correlation. The p-value uses the same statistic.
        seed: seed of the surrogates.

    Returns:
        :class:`DensityMatch`.

    Raises:
        InvalidParameterError: a plate without valid windows, no shift with enough overlap (plates
            too small for ``min_overlap_cm``), or bad parameters.

    Units:
        positions and offsets in cm, densities in threads/cm.

    Example:
        >>> from artlens.synth import Roll
        >>> from artlens.canvas.threads import SpectralParams, count_threads_spectral
        >>> roll = Roll(12.0, 15.0, seed=3, length_cm=30, width_cm=20)
        >>> p = SpectralParams(window_cm=1.0, step_cm=0.25, band=(8, 25))
        >>> ra = count_threads_spectral(roll.cut(2.0, 1.0, 3.0, 6.0, px_per_cm=100).image, p, px_per_cm=100)
        >>> rb = count_threads_spectral(roll.cut(4.0, 20.0, 3.0, 6.0, px_per_cm=100).image, p, px_per_cm=100)
        >>> m = match_density_maps(ra, rb, n_permutations=99)
        >>> round(m.offset_cm[0], 1), m.orientation in ("rot0", "flip-rot180"), m.p_value <= 0.01
        (2.0, True, True)
    """
    _check_result(a, "A")
    _check_result(b, "B")
    if warp not in ("either", "auto", "vertical", "horizontal"):
        raise InvalidParameterError(f"warp must be 'either', 'auto', 'vertical' or 'horizontal'; got {warp!r}")
    if not orientations:
        raise InvalidParameterError("at least one orientation is needed")
    for o in orientations:
        _parse_orientation(o)
    if not (0 <= scale_tolerance < 0.2) or n_scales < 1:
        raise InvalidParameterError("scale_tolerance must lie in [0, 0.2) and n_scales be >= 1")
    if min_overlap_cm <= 0 or min_overlap_samples < 3:
        raise InvalidParameterError("min_overlap_cm must be > 0 and min_overlap_samples >= 3")
    if score not in ("z", "r"):
        raise InvalidParameterError(f"score must be 'z' or 'r'; got {score!r}")
    if n_permutations < 0:
        raise InvalidParameterError("n_permutations must be >= 0")
    h = float(grid_cm) if grid_cm is not None else float(max(a.step_cm, b.step_cm))
    if not h > 0:
        raise InvalidParameterError("grid_cm must be positive")
    min_n = max(int(min_overlap_samples), int(math.ceil(min_overlap_cm / h - 1e-9)))
    notes = []
    if not (math.isclose(a.step_cm, h) and math.isclose(b.step_cm, h) and math.isclose(a.px_per_cm, b.px_per_cm)):
        notes.append(
            f"profiles resampled to a common {h:g} cm grid (A: {a.px_per_cm:g} px/cm, step {a.step_cm:g} cm; "
            f"B: {b.px_per_cm:g} px/cm, step {b.step_cm:g} cm)"
        )
    if not math.isclose(a.window_cm, b.window_cm):
        notes.append(
            f"window sizes differ (A {a.window_cm:g} cm, B {b.window_cm:g} cm): the profiles are smoothed "
            "differently, which lowers the correlation"
        )

    warp_a, scores_a = warp_direction(a)
    warp_b, scores_b = warp_direction(b)
    prof_a = {f: _profile(a, f) for f in DIRECTIONS}
    prof_b = {g: _profile(b, g) for g in DIRECTIONS}
    if warp == "either":
        families = [f for f in DIRECTIONS if np.isfinite(prof_a[f].val).sum() >= min_n]
    else:
        chosen = warp_a if warp == "auto" else warp
        families = [chosen] if chosen is not None and np.isfinite(prof_a[chosen].val).sum() >= min_n else []
    if not families:
        raise InvalidParameterError(
            f"plate A has fewer than {min_n} valid profile samples across the warp candidates "
            f"({min_overlap_cm} cm at {h} cm steps); use a larger plate or a smaller min_overlap_cm"
        )
    scales = np.linspace(1 - scale_tolerance, 1 + scale_tolerance, n_scales) if n_scales > 1 else np.ones(1)

    # Every hypothesis: A family f, orientation class (B family g, reversed?), scale s.
    # Orientations that differ by a flip along f's threads give the same profile: one class each.
    classes: dict[tuple[str, str, bool], list[str]] = {}
    for f in families:
        for o in orientations:
            g, rev = _source_family(o, f)
            classes.setdefault((f, g, rev), []).append(o)

    rng = np.random.default_rng(seed)
    sur_b = {
        g: _phase_surrogates(prof_b[g].val, n_permutations, rng)
        if n_permutations and np.isfinite(prof_b[g].val).sum() >= 3
        else None
        for g in DIRECTIONS
    }

    best: dict[str, Any] = {"z": -np.inf}
    null_max = np.full(n_permutations, -np.inf)
    n_tested = 0
    for (f, g, rev), _names in classes.items():
        if np.isfinite(prof_b[g].val).sum() < min_n:
            continue
        a0, av = _on_grid(prof_a[f].pos, prof_a[f].val, h)
        bpos, bval = _oriented(prof_b[g], rev)
        for s in scales:
            b0, bv = _scaled(bpos, bval, float(s), h)
            r, nr = _ncc_all_lags(av, bv, min_n)
            z = _score(r, nr, score)
            n_tested += int(np.isfinite(r).sum())
            if np.isfinite(z).any():
                j = int(np.nanargmax(z))
                if z[j] > best["z"]:
                    best = {"z": float(z[j]), "r": float(r[j]), "f": f, "g": g, "rev": rev, "s": float(s), "j": j,
                            "row": z, "a0": a0, "b0": b0, "m": bv.size, "av": av, "bv": bv}
            if sur_b[g] is not None:
                _, sv = _scaled(bpos, _oriented(prof_b[g], rev, sur_b[g])[1], float(s), h)
                rn, nn = _ncc_all_lags(av, sv, min_n)
                zn = _score(rn, nn, score)
                with _quiet():
                    mx = np.nanmax(np.where(np.isfinite(zn), zn, -np.inf), axis=-1)
                null_max = np.maximum(null_max, mx)
    if not math.isfinite(best["z"]):
        raise InvalidParameterError(
            f"no alignment overlaps by {min_n} valid samples ({min_n * h:.2f} cm); the plates or their "
            f"valid windows are too small for min_overlap_cm={min_overlap_cm}"
        )

    f, g, rev, s = best["f"], best["g"], best["rev"], best["s"]
    lag = best["j"] - (best["m"] - 1) + _refine(best["row"], best["j"])
    dx = best["a0"] + lag * h - best["b0"]
    _, n_overlap = _ncc_all_lags(best["av"], best["bv"], 1)
    overlap_cm = float(n_overlap[best["j"]]) * h
    p_value = float((1 + np.sum(null_max >= best["z"] - 1e-12)) / (1 + n_permutations)) if n_permutations else math.nan

    # The weft: the other family of A against B's family on the same axis, under the candidate
    # orientations of the winning class; it picks between the orientation and its flipped partner.
    fw = _OTHER[f]
    cands = classes[(f, g, rev)]
    weft: dict[str, Any] | None = None
    a0w, avw = _on_grid(prof_a[fw].pos, prof_a[fw].val, h)
    for o in cands:
        gw, revw = _source_family(o, fw)
        bposw, bvalw = _oriented(prof_b[gw], revw)
        if np.isfinite(avw).sum() < min_n or np.isfinite(bvalw).sum() < min_n:
            continue
        b0w, bvw = _scaled(bposw, bvalw, s, h)
        rw, nw = _ncc_all_lags(avw, bvw, min_n)
        zw = _score(rw, nw, score)
        if not np.isfinite(zw).any():
            continue
        j = int(np.nanargmax(zw))
        if weft is None or zw[j] > weft["z"]:
            weft = {"o": o, "z": float(zw[j]), "r": float(rw[j]), "j": j, "row": zw, "n": float(nw[j]), "a0": a0w,
                    "b0": b0w, "m": bvw.size, "gw": gw, "revw": revw, "bvw": bvw}
    if weft is None:
        orientation = cands[0]
        dy, r_w, p_w, overlap_w = 0.0, None, None, 0.0
    else:
        orientation = weft["o"]
        lag_w = weft["j"] - (weft["m"] - 1) + _refine(weft["row"], weft["j"])
        dy = weft["a0"] + lag_w * h - weft["b0"]
        r_w, overlap_w = weft["r"], weft["n"] * h
        p_w = None
        if n_permutations and sur_b[weft["gw"]] is not None:
            bposw, _ = _oriented(prof_b[weft["gw"]], weft["revw"])
            svals = _oriented(prof_b[weft["gw"]], weft["revw"], sur_b[weft["gw"]])[1]
            _, sv = _scaled(bposw, svals, s, h)
            rn, nn = _ncc_all_lags(avw, sv, min_n)
            zn = _score(rn, nn, score)
            with _quiet():
                mx = np.nanmax(np.where(np.isfinite(zn), zn, -np.inf), axis=-1)
            # the weft search also chose among the candidate orientations: count them
            p_one = float((1 + np.sum(mx >= weft["z"] - 1e-12)) / (1 + n_permutations))
            p_w = min(1.0, p_one * len(cands))
    alternative = _partner(orientation, f)
    if alternative not in orientations:
        alternative = orientation
    dx_img, dy_img = (dx, dy) if f == "vertical" else (dy, dx)

    profiles: dict[str, np.ndarray] = {
        "warp_a_pos": best["a0"] + h * np.arange(best["av"].size),
        "warp_a": best["av"],
        "warp_b_pos": best["b0"] + dx + h * np.arange(best["bv"].size),
        "warp_b": best["bv"],
    }
    if weft is not None:
        profiles.update(
            weft_a_pos=a0w + h * np.arange(avw.size),
            weft_a=avw,
            weft_b_pos=weft["b0"] + dy + h * np.arange(weft["bvw"].size),
            weft_b=weft["bvw"],
        )
    return DensityMatch(
        correlation=best["r"],
        p_value=p_value,
        offset_cm=(float(dx), float(dy)),
        orientation=orientation,
        orientation_alternative=alternative,
        orientation_resolved=bool(p_w is not None and p_w < 0.05),
        scale=s,
        overlap_cm=overlap_cm,
        offset_xy_cm=(float(dx_img), float(dy_img)),
        warp_a=warp_a,
        warp_b=warp_b,
        warp_scores_a=scores_a,
        warp_scores_b=scores_b,
        matched_direction_a=f,
        matched_direction_b=g,
        weft_correlation=r_w,
        weft_p_value=p_w,
        weft_overlap_cm=float(overlap_w),
        n_shifts_tested=n_tested,
        n_permutations=int(n_permutations),
        grid_cm=h,
        notes=notes,
        profiles=profiles,
    )


# --------------------------------------------------------------------------------------------------
# Figure
# --------------------------------------------------------------------------------------------------


def density_match_figure(match: DensityMatch, labels: tuple[str, str] = ("A", "B")) -> Figure:
    """Overlay of the aligned density profiles (threads/cm against cm in A's frame).

    The top panel shows the warp profiles (the matched family of A and B's aligned profile, B moved
    by ``offset_cm[0]`` and stretched by ``scale``); the bottom panel the weft profiles, when both
    plates have one. The title gives the correlation, p-value, orientation and offset. Built on an
    Agg canvas without pyplot.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    p = match.profiles
    has_weft = "weft_a" in p
    fig = Figure(figsize=(7.5, 5.2 if has_weft else 3.2))
    FigureCanvasAgg(fig)
    axes = fig.subplots(2 if has_weft else 1, 1, squeeze=False)[:, 0]
    la, lb = labels
    axis_name = {"vertical": "x", "horizontal": "y"}
    rows: list[tuple[str, str, float | None, float]] = [
        ("warp", match.matched_direction_a, match.correlation, match.overlap_cm)]
    if has_weft:
        rows.append(("weft", _OTHER[match.matched_direction_a], match.weft_correlation, match.weft_overlap_cm))
    for ax, (kind, fam, r, ov) in zip(axes, rows, strict=True):
        ax.plot(p[f"{kind}_a_pos"], p[f"{kind}_a"], "-", color="tab:blue", lw=1.4, label=la)
        ax.plot(p[f"{kind}_b_pos"], p[f"{kind}_b"], "--", color="tab:orange", lw=1.4, label=f"{lb} (aligned)")
        rtxt = "n/a" if r is None else f"{r:.3f}"
        ax.set_title(f"{kind}: {fam} threads of {la}, r = {rtxt}, overlap {ov:.1f} cm", fontsize=9)
        ax.set_xlabel(f"position across the threads in {la} ({axis_name[fam]}, cm)")
        ax.set_ylabel("threads/cm")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    resolved = "" if match.orientation_resolved else f" (or {match.orientation_alternative})"
    fig.suptitle(
        f"density match: r = {match.correlation:.3f}, p = {match.p_value:.3g}; "
        f"{lb} {match.orientation}{resolved}, offset ({match.offset_cm[0]:.2f}, {match.offset_cm[1]:.2f}) cm, "
        f"scale {match.scale:.3f}",
        fontsize=9,
    )
    fig.tight_layout()
    return fig
