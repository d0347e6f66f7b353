"""Synthetic plain-weave canvas X-ray plates with per-pixel ground truth.

A plate is rendered from two *thread phase* fields, one per thread direction. The phase
``phi(y, x)`` counts threads: its integer values are the thread centre lines, so the local thread
density is ``|grad phi|`` (threads/cm, measured across the threads) and the thread angle is the
direction of ``grad phi``. Every truth map is derived from the same fields that the renderer uses,
so truth and image cannot drift apart.

How a phase field is built, for one direction:

1. Plate pixel ``(row, col)`` has plate coordinates ``(y, x) = ((row + 0.5), (col + 0.5)) / px_per_cm``
   cm, y down. A *material warp* moves them to fabric coordinates ``(Y, X)``: a slow quadratic
   stretch (``density_gradient``) and scallops near a tacking edge (``cusping_*``).
2. The fabric coordinates are rotated by the thread angle into an across-thread coordinate ``u``
   and an along-thread coordinate ``v`` (cm); the *ideal phase* is ``psi = density * u``.
3. The threads of the fabric sit at irregular ideal phases ``centres[k]`` (cumulative sums of
   jittered spacings); ``phi = interp(psi, centres, k)`` maps the ideal phase to the thread index.

Conventions (shared with the spectral counter): the image is ``(rows, cols) = (y down, x right)``;
``horizontal`` threads run left-right and are counted along y, ``vertical`` threads run top-bottom
and are counted along x; angles are degrees, deviation from the axis, counter-clockwise positive as
displayed. A horizontal grating of density ``d`` and angle ``t`` has spatial frequency
``(f_row, f_x) = (d cos t, d sin t)``; a vertical one ``(-d sin t, d cos t)`` (cycles/cm).

References:
    Johnson, C. R., Johnson, D. H., Hamashima, N., Yang, H. S. and Hendriks, E. (2009). On the
    utility of spectral-maximum-based automated thread counting from X-rays of paintings on
    canvas. Studies in Conservation 56(2), 104-114.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage, spatial, special

from artlens.errors import InvalidParameterError

DIRECTIONS = ("horizontal", "vertical")
"""Thread directions: ``horizontal`` threads run left-right, ``vertical`` threads top-bottom."""

CUSPING_EDGES = ("left", "right", "top", "bottom")
MAX_PIXELS = 40_000_000
"""Largest plate (pixels) that :func:`make_plate` renders; per-pixel float maps cost ~40 B/pixel."""

_HALF_WIDTH = 0.42  # half-width of an average thread, in threads (0.5 = threads touch)
_KNOT_STEP_CM = 0.7  # scale of the slow thickness variation along a thread
_ALONG_STEP_CM = 0.02  # sampling step of the along-thread thickness tables
_FABRIC_FIELDS = (
    "horizontal_density",
    "vertical_density",
    "spacing_jitter",
    "thickness_variation",
    "slub_rate",
)


@dataclass
class WeaveParams:
    """Everything that defines a synthetic plate; the same params and seed give the same plate.

    Attributes:
        height_cm, width_cm: plate size (cm).
        px_per_cm: resolution (pixels/cm).
        horizontal_density, vertical_density: nominal densities (threads/cm, across the threads).
        horizontal_angle_deg, vertical_angle_deg: thread angles (degrees, deviation from the axis,
            counter-clockwise positive as displayed); must lie in (-30, 30).
        spacing_jitter: relative standard deviation of the centre-to-centre spacing of threads.
        thickness_variation: relative standard deviation of thread width, split between a constant
            per-thread part and a slow variation along the thread (scale ~0.7 cm).
        slub_rate: slubs (short thick stretches of yarn, 0.15-0.5 cm long) per cm of thread.
        weave_contrast: 0..1, crimp of the threads: how much higher a thread is where it passes
            over a crossing than where it passes under; 0 gives a plain grid.
        ply_groove: 0..1, relative depth of a groove along the middle of every thread (two-ply yarn
            that shows as two thin lines per thread).
        flat_top: 0..0.9, fraction of each thread's half-width that stays at full height (a flattened,
            flat-topped yarn instead of a rounded one); the rest falls off as a raised cosine.
        thread_width: 0.5..2, half-width of every thread relative to the default (0.42 of the
            spacing): above about 1.2 the threads touch and the gaps between them show only as thin
            bright lines where the ground fills them.
        twist: 0..1, contrast of the diagonal striation that the fibres' twist draws on a thread.
        thread_balance: -0.9..0.9, how much more visible one thread system is than the other (in
            real canvases warp and weft often differ in thickness, spin and filling): the relief of
            the horizontal threads is multiplied by ``1 - thread_balance`` and that of the vertical
            threads by ``1 + thread_balance``; 0.5 makes the vertical threads three times as visible.
        density_gradient: relative change of density across the plate: vertical threads get denser
            to the right, horizontal threads downwards, by this fraction from one side to the other;
            the plate centre keeps the nominal density.
        cusping_amplitude: relative increase of the density of the threads parallel to the tacking
            edge, at the edge and in line with a tack; it decays as ``exp(-distance/cusping_depth_cm)``
            and varies along the edge as ``(1 + cos)/2`` between tacks ``cusping_period_cm`` apart,
            so those threads bend into scallops.
        cusping_depth_cm: decay length of the cusping (cm).
        cusping_edge: ``"left"``, ``"right"``, ``"top"`` or ``"bottom"``.
        cusping_period_cm: distance between tacks along the edge (cm).
        paint: 0..1, strength of the smooth brushwork layer (low-frequency, elongated streaks) that
            adds density and hides the weave where it is thick.
        lead_white_strokes: number of sharp-edged bright strokes (lead white).
        craquelure: 0..1, density and visibility of the crack network (thin, mostly dark lines).
        holes: 0..1, fraction of interstices that show a spot (75 % bright: ground pushed through,
            25 % dark: an open hole).
        interstice_lattice: -3..3, a spot at EVERY interstice, as where the ground fills all the
            gaps between crossing threads (> 0: bright spots) or fails to fill any of them (< 0:
            dark spots); the magnitude is the spots' strength (1: about as strong as the weave).
            Such a regular lattice of spots can cancel the weave's fundamental in the spectrum.
        impasto: 0..1, thick lumpy paint over the canvas: a lognormal thickness field with lumps of
            0.03-0.15 cm (drawn from the seed) that hides the weave where it is thick (the weave's
            contrast times ``exp(-2.5 * impasto * thickness)``, thickness 1 on average) and shows
            its own texture (standard deviation about ``0.3 * impasto``), stronger than the weave.
        lining: 0..1, contrast of a second, independent plain weave seen through the first (a
            lining canvas glued to the back in a relining); its densities are 0.6-1.6 times the
            main ones and its angles within ±4°, drawn from the seed.
        banding: 0..1, scanner / film banding: a random gain per row or per column (standard
            deviation ``0.08 * banding``), smoothed over a few pixels.
        cell_variation: 0..1, blotchiness at the scale of the weave: every interstice and every
            crossing gets its own brightness (ground filling each cell unevenly, threads flattened
            or thickened at a crossing); standard deviation ``0.25 * cell_variation``.
        grain: 0..1, fine texture of real X-rays below the thread scale: band-pass noise of
            0.003-0.006 cm (fibres, pigment grains) and sparse specks (lead-white particles),
            standard deviation about ``0.15 * grain``.
        noise: standard deviation of the additive Gaussian noise, as a fraction of the full range.
        blur_px: standard deviation of the Gaussian blur (pixels), applied before the noise.
        bit_depth: 8 or 16 (bits of the unsigned output image).
        invert: flip the grey levels (threads bright, interstices dark).
        equalize: histogram-equalise the output.
        seed: seed of :func:`numpy.random.default_rng`; fabric and nuisances draw from child seeds.
    """

    height_cm: float = 3.0
    width_cm: float = 3.0
    px_per_cm: float = 200.0
    horizontal_density: float = 12.0
    vertical_density: float = 15.0
    horizontal_angle_deg: float = 0.0
    vertical_angle_deg: float = 0.0
    spacing_jitter: float = 0.04
    thickness_variation: float = 0.15
    slub_rate: float = 0.0
    weave_contrast: float = 0.3
    ply_groove: float = 0.0
    flat_top: float = 0.0
    thread_width: float = 1.0
    twist: float = 0.0
    thread_balance: float = 0.0
    density_gradient: float = 0.0
    cusping_amplitude: float = 0.0
    cusping_depth_cm: float = 2.0
    cusping_edge: str = "left"
    cusping_period_cm: float = 3.0
    paint: float = 0.0
    impasto: float = 0.0
    lead_white_strokes: int = 0
    craquelure: float = 0.0
    holes: float = 0.0
    interstice_lattice: float = 0.0
    lining: float = 0.0
    banding: float = 0.0
    cell_variation: float = 0.0
    grain: float = 0.0
    noise: float = 0.02
    blur_px: float = 0.7
    bit_depth: int = 8
    invert: bool = False
    equalize: bool = False
    seed: int = 0

    def validate(self) -> WeaveParams:
        """Raise :class:`~artlens.errors.InvalidParameterError` on any out-of-range value."""

        def need(ok: bool, message: str) -> None:
            if not ok:
                raise InvalidParameterError(message)

        need(self.height_cm > 0 and self.width_cm > 0, "plate size must be positive (cm)")
        need(self.px_per_cm > 0, "px_per_cm must be positive")
        for name in ("horizontal", "vertical"):
            density = getattr(self, f"{name}_density")
            need(density > 0, f"{name}_density must be positive (threads/cm)")
            need(
                self.px_per_cm / density >= 3.0,
                f"{name}_density {density} threads/cm is under 3 px per thread at {self.px_per_cm} px/cm",
            )
            need(abs(getattr(self, f"{name}_angle_deg")) < 30.0, f"{name}_angle_deg must lie in (-30, 30)")
        need(0 <= self.spacing_jitter <= 0.3, "spacing_jitter must lie in [0, 0.3]")
        need(0 <= self.thickness_variation <= 0.5, "thickness_variation must lie in [0, 0.5]")
        need(self.slub_rate >= 0, "slub_rate must be >= 0 (slubs/cm)")
        need(0 <= self.weave_contrast <= 1, "weave_contrast must lie in [0, 1]")
        need(0 <= self.ply_groove <= 1 and 0 <= self.twist <= 1, "ply_groove and twist must lie in [0, 1]")
        need(0 <= self.flat_top <= 0.9, "flat_top must lie in [0, 0.9]")
        need(0.5 <= self.thread_width <= 2, "thread_width must lie in [0.5, 2]")
        need(abs(self.thread_balance) <= 0.9, "thread_balance must lie in [-0.9, 0.9]")
        need(abs(self.density_gradient) < 1, "density_gradient must lie in (-1, 1)")
        need(0 <= self.cusping_amplitude < 1, "cusping_amplitude must lie in [0, 1)")
        need(
            self.cusping_depth_cm > 0 and self.cusping_period_cm > 0,
            "cusping depth and period must be > 0 (cm)",
        )
        need(self.cusping_edge in CUSPING_EDGES, f"cusping_edge must be one of {', '.join(CUSPING_EDGES)}")
        for name in ("paint", "impasto", "craquelure", "holes", "cell_variation", "grain"):
            need(0 <= getattr(self, name) <= 1, f"{name} must lie in [0, 1]")
        need(-3 <= self.interstice_lattice <= 3, "interstice_lattice must lie in [-3, 3]")
        need(0 <= self.lining <= 1 and 0 <= self.banding <= 1, "lining and banding must lie in [0, 1]")
        need(self.lead_white_strokes >= 0, "lead_white_strokes must be >= 0")
        need(self.noise >= 0 and self.blur_px >= 0, "noise and blur_px must be >= 0")
        need(self.bit_depth in (8, 16), "bit_depth must be 8 or 16")
        h, w = plate_shape(self)
        need(h >= 8 and w >= 8, "plate must be at least 8x8 pixels")
        need(h * w <= MAX_PIXELS, f"plate of {h}x{w} pixels exceeds {MAX_PIXELS} pixels")
        return self


def plate_shape(params: WeaveParams) -> tuple[int, int]:
    """``(rows, cols)`` of the plate: its size in cm times px/cm, rounded."""
    return round(params.height_cm * params.px_per_cm), round(params.width_cm * params.px_per_cm)


def _with_overrides(params: WeaveParams | None, overrides: dict[str, Any]) -> WeaveParams:
    valid = {f.name for f in fields(WeaveParams)}
    unknown = sorted(set(overrides) - valid)
    if unknown:
        raise InvalidParameterError(
            f"unknown WeaveParams field(s) {unknown}; valid: {', '.join(sorted(valid))}"
        )
    return replace(params or WeaveParams(), **overrides).validate()


# --------------------------------------------------------------------------------------------------
# The plate


@dataclass
class SyntheticPlate:
    """A rendered plate and its ground truth.

    Attributes:
        image: ``(H, W)`` uint8 or uint16 X-ray image.
        px_per_cm: resolution (pixels/cm).
        params: the parameters that produced it.
        truth: float32 ``(H, W)`` maps ``horizontal_density``, ``vertical_density`` (threads/cm,
            ``1 / local centre-to-centre spacing``, across the threads) and ``horizontal_angle``,
            ``vertical_angle`` (degrees).
        thread_phase: float32 ``(H, W)`` phase per direction (threads); thread ``k``'s centre line is
            where the phase equals ``k``. Thread indices are those of the fabric (of the roll).
        roll_origin_cm: ``(y, x)`` cm of the plate's top-left corner on its roll, or None.
    """

    image: np.ndarray
    px_per_cm: float
    params: WeaveParams
    truth: dict[str, np.ndarray] = field(repr=False)
    thread_phase: dict[str, np.ndarray] = field(repr=False)
    roll_origin_cm: tuple[float, float] | None = None

    def truth_in_window(self, y0: int, x0: int, h: int, w: int) -> dict[str, float]:
        """Mean of each truth map over rows ``y0:y0+h`` and columns ``x0:x0+w`` (pixels)."""
        rows, cols = self.image.shape
        if h <= 0 or w <= 0 or y0 < 0 or x0 < 0 or y0 + h > rows or x0 + w > cols:
            raise InvalidParameterError(
                f"window ({y0}, {x0}, {h}, {w}) is not inside the {rows}x{cols} plate"
            )
        return {k: float(v[y0 : y0 + h, x0 : x0 + w].mean(dtype=np.float64)) for k, v in self.truth.items()}

    def mean_truth(self) -> dict[str, float]:
        """Mean of each truth map over the whole plate."""
        return self.truth_in_window(0, 0, *self.image.shape)

    def count_threads_along(
        self, direction: str, start: tuple[float, float], stop: tuple[float, float]
    ) -> int:
        """Number of ``direction`` thread centre lines crossed by the segment ``start -> stop``.

        Args:
            direction: ``"horizontal"`` or ``"vertical"``.
            start, stop: ``(row, col)`` pixel coordinates (pixel centres are integers).

        Returns:
            The count: integer values of the phase passed along the segment (sampled every 0.25 px).
        """
        phase = self.thread_phase[_check_direction(direction)]
        n = max(2, int(math.ceil(4 * math.hypot(stop[0] - start[0], stop[1] - start[1]))) + 1)
        coords = np.array([np.linspace(start[0], stop[0], n), np.linspace(start[1], stop[1], n)])
        p = ndimage.map_coordinates(phase.astype(np.float64), coords, order=1, mode="nearest")
        return int(np.abs(np.diff(np.floor(p))).sum())

    def thread_centres(self, direction: str, line: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Where the threads of ``direction`` cross one line of pixels.

        Vertical threads are read along row ``line``, horizontal threads along column ``line``
        (default: the middle one).

        Returns:
            ``(index, position_cm)``: the fabric index of each thread crossed and the position (cm
            from the plate's top-left corner, along the line) where its centre line crosses.
        """
        direction = _check_direction(direction)
        phase = self.thread_phase[direction]
        if direction == "vertical":
            p = phase[phase.shape[0] // 2 if line is None else line, :]
        else:
            p = phase[:, phase.shape[1] // 2 if line is None else line]
        p = p.astype(np.float64)
        f = np.floor(p)
        i = np.nonzero(f[1:] != f[:-1])[0]
        k = np.maximum(f[i], f[i + 1])
        t = (k - p[i]) / (p[i + 1] - p[i])
        return k.astype(np.int64), (i + 0.5 + t) / self.px_per_cm


def _check_direction(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise InvalidParameterError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
    return direction


# --------------------------------------------------------------------------------------------------
# Fabric: the threads of one direction


@dataclass
class ThreadFamily:
    """The parallel threads of one direction of a piece of fabric (all its randomness is here).

    Thread ``k`` lies where the ideal phase ``psi = density * u`` equals ``centres[k]`` (``u`` is
    the across-thread fabric coordinate, cm), so the spacing between threads ``k`` and ``k + 1`` is
    ``(centres[k+1] - centres[k]) / density`` cm. Its width is ``widths[k]`` (relative) times a
    slow random variation and slubs along the thread, drawn from ``seed`` and ``k`` only, so any
    piece cut from the fabric sees the same thread. ``width_scale`` multiplies the half-width of
    every thread (1.0: 0.42 of the spacing, so about 84 % of the spacing is covered by thread).
    """

    density: float
    centres: np.ndarray
    widths: np.ndarray
    along_range_cm: tuple[float, float]
    thickness_variation: float
    slub_rate: float
    seed: int
    width_scale: float = 1.0

    @classmethod
    def generate(
        cls,
        rng: np.random.Generator,
        density: float,
        psi_range: tuple[float, float],
        along_range_cm: tuple[float, float],
        spacing_jitter: float,
        thickness_variation: float,
        slub_rate: float,
        *,
        spacing_correlation: float = 0.0,
        thread_width: float = 1.0,
        stripe_contrast: float = 0.0,
        stripe_threads: float = 12.0,
    ) -> ThreadFamily:
        """Draw threads covering ideal phases ``psi_range`` (threads), 3 threads of margin each side.

        Spacings are ``1 + spacing_jitter * e_k`` (clipped at 0.35), rescaled so that their mean
        over the threads inside ``psi_range`` is exactly 1 (the nominal density); ``e_k`` is white
        N(0, 1) noise, or with ``spacing_correlation`` = rho > 0 a unit-variance AR(1) sequence
        ``e_k = rho e_(k-1) + sqrt(1 - rho^2) z_k`` (runs of tighter and looser threads).
        ``thread_width`` scales every thread's half-width (see the class). ``stripe_contrast`` > 0
        makes bands of thicker and thinner yarn across the fabric: band lengths are geometric with
        mean ``stripe_threads`` threads and each band multiplies the widths of its threads by
        ``exp(stripe_contrast * N(0, 1))``. With the defaults the draws are those of earlier versions.
        """
        lo, hi = psi_range
        n = int(math.ceil(hi - lo)) + 7
        e = rng.standard_normal(n - 1)
        if spacing_correlation > 0:
            rho, s = float(spacing_correlation), math.sqrt(1.0 - float(spacing_correlation) ** 2)
            for k in range(1, e.size):
                e[k] = rho * e[k - 1] + s * e[k]
        spacing = np.clip(1.0 + spacing_jitter * e, 0.35, None)
        spacing /= spacing[3:-3].mean()
        centres = lo - 3.0 + rng.uniform() + np.concatenate([[0.0], np.cumsum(spacing)])
        widths = np.clip(1.0 + 0.7 * thickness_variation * rng.standard_normal(n), 0.4, 1.8)
        seed = int(rng.integers(2**62))
        if stripe_contrast > 0:
            srng = np.random.default_rng([seed, 7919])
            band = np.empty(n)
            k = 0
            while k < n:
                length = int(srng.geometric(1.0 / max(stripe_threads, 1.0)))
                band[k: k + length] = srng.standard_normal()
                k += length
            widths = np.clip(widths * np.exp(stripe_contrast * band), 0.3, 2.2)
        return cls(density, centres, widths, along_range_cm, thickness_variation, slub_rate, seed,
                   float(thread_width))

    def phase(self, psi: np.ndarray) -> np.ndarray:
        """Thread phase (fabric thread index, fractional) at ideal phase ``psi``."""
        return np.interp(psi, self.centres, np.arange(self.centres.size, dtype=np.float64))

    def cell_spacing(self, psi: np.ndarray) -> np.ndarray:
        """Spacing (in nominal threads) between the two thread centres that enclose ``psi``."""
        i = np.clip(np.searchsorted(self.centres, psi, side="right") - 1, 0, self.centres.size - 2)
        return np.diff(self.centres)[i]

    def width_table(self, k_lo: int, k_hi: int, v_lo: float, n_v: int) -> np.ndarray:
        """Relative widths of threads ``k_lo..k_hi`` at ``v = v_lo + i * 0.02`` cm, shape ``(k, n_v)``."""
        v = v_lo + _ALONG_STEP_CM * np.arange(n_v)
        a0, a1 = self.along_range_cm
        knots_v = np.arange(a0, a1 + _KNOT_STEP_CM, _KNOT_STEP_CM)
        table = np.empty((k_hi - k_lo + 1, n_v))
        for row, k in enumerate(range(k_lo, k_hi + 1)):
            rng = np.random.default_rng([self.seed, k])
            knots = rng.standard_normal(knots_v.size)
            mod = 1.0 + 0.7 * self.thickness_variation * np.interp(v, knots_v, knots)
            n_slubs = rng.poisson(self.slub_rate * (a1 - a0))
            if n_slubs:
                pos = rng.uniform(a0, a1, n_slubs)
                sigma = rng.uniform(0.15, 0.5, n_slubs) / 4.0
                amp = rng.uniform(0.4, 1.0, n_slubs)
                near = (pos > v[0] - 4 * sigma) & (pos < v[-1] + 4 * sigma)
                if near.any():
                    z = (v[None, :] - pos[near, None]) / sigma[near, None]
                    mod += (amp[near, None] * np.exp(-0.5 * z**2)).sum(axis=0)
            table[row] = self.widths[k] * np.clip(mod, 0.3, None)
        return table


# --------------------------------------------------------------------------------------------------
# Geometry: from pixels to ideal phases


@dataclass
class _Geometry:
    psi: dict[str, np.ndarray]  # ideal phase per direction, (H, W) float64
    along: dict[str, np.ndarray]  # along-thread fabric coordinate (cm), (H, W) float64


def _geometry(params: WeaveParams, origin_cm: tuple[float, float], tack_phase: float) -> _Geometry:
    """Ideal phases of both directions at every pixel; ``origin_cm`` is the plate's (y, x) on the fabric."""
    rows, cols = plate_shape(params)
    ppc = params.px_per_cm
    h_cm, w_cm = rows / ppc, cols / ppc
    y = ((np.arange(rows) + 0.5) / ppc)[:, None]
    x = ((np.arange(cols) + 0.5) / ppc)[None, :]

    # Material warp: where the fabric point now seen at (y, x) lies in the relaxed fabric.
    g = params.density_gradient
    big_x = np.broadcast_to(x + g * (x - w_cm / 2) ** 2 / (2 * w_cm), (rows, cols))
    big_y = np.broadcast_to(y + g * (y - h_cm / 2) ** 2 / (2 * h_cm), (rows, cols))
    a, depth, period = params.cusping_amplitude, params.cusping_depth_cm, params.cusping_period_cm
    if a > 0:
        edge = params.cusping_edge
        along = y if edge in ("left", "right") else x
        tacks = 0.5 * (1 + np.cos(2 * np.pi * (along / period - tack_phase)))
        # d(shift)/d(normal) = a * tacks * exp(-dist/depth): the density rises by that fraction.
        if edge == "left":
            big_x = big_x - a * depth * tacks * np.exp(-x / depth)
        elif edge == "right":
            big_x = big_x + a * depth * tacks * np.exp(-(w_cm - x) / depth)
        elif edge == "top":
            big_y = big_y - a * depth * tacks * np.exp(-y / depth)
        else:
            big_y = big_y + a * depth * tacks * np.exp(-(h_cm - y) / depth)

    # Rotate about the plate centre, then place the centre on the fabric.
    dy, dx = big_y - h_cm / 2, big_x - w_cm / 2
    cy, cx = origin_cm[0] + h_cm / 2, origin_cm[1] + w_cm / 2
    th = math.radians(params.horizontal_angle_deg)
    tv = math.radians(params.vertical_angle_deg)
    u_h = cy + dy * math.cos(th) + dx * math.sin(th)
    v_h = cx + dx * math.cos(th) - dy * math.sin(th)
    u_v = cx + dx * math.cos(tv) - dy * math.sin(tv)
    v_v = cy + dy * math.cos(tv) + dx * math.sin(tv)
    return _Geometry(
        psi={"horizontal": params.horizontal_density * u_h, "vertical": params.vertical_density * u_v},
        along={"horizontal": v_h, "vertical": v_v},
    )


def _truth(
    psi: np.ndarray, family: ThreadFamily, direction: str, px_per_cm: float
) -> tuple[np.ndarray, np.ndarray]:
    """Density (threads/cm) and angle (deg) maps: ``|grad phi|`` and the direction of ``grad psi``."""
    g_row, g_x = np.gradient(psi, 1.0 / px_per_cm, edge_order=2)
    density = np.hypot(g_row, g_x) / family.cell_spacing(psi)
    if direction == "horizontal":
        angle = np.degrees(np.arctan2(g_x, g_row))
    else:
        angle = np.degrees(np.arctan2(-g_row, g_x))
    return density.astype(np.float32), angle.astype(np.float32)


# --------------------------------------------------------------------------------------------------
# Rendering


def _thread_heights(
    family: ThreadFamily,
    phi: np.ndarray,
    along: np.ndarray,
    other_phi: np.ndarray,
    contrast: float,
    shift: int,
    ply: float = 0.0,
    twist: float = 0.0,
    flat_top: float = 0.0,
    width: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-surface height and material of one direction's threads, both ``(H, W)``.

    Each pixel sees its nearest thread and the neighbour on its side (so wide threads and slubs can
    overlap). A thread's cross-section is a raised cosine of half-width ``0.42 * width`` threads;
    along the thread its height follows ``1 + contrast * cos(pi * (other_phi + k + shift))``: up
    where it passes over a thread of the other direction, down where it passes under. ``ply`` cuts a
    groove of that relative depth along the middle of every thread (two-ply yarn); ``twist`` adds
    diagonal striation of that contrast (the fibres' twist, one period per 1.4 threads along the
    thread, S-twist for horizontal and Z-twist for vertical threads). ``flat_top`` keeps that
    fraction of the half-width at full height (the raised cosine then spans the rest), ``width``
    multiplies every half-width.
    """
    k_lo = int(np.floor(phi.min())) - 1
    k_hi = int(np.ceil(phi.max())) + 1
    k_lo, k_hi = max(k_lo, 0), min(k_hi, family.centres.size - 1)
    v_lo = float(along.min()) - _ALONG_STEP_CM
    n_v = int(math.ceil((float(along.max()) - v_lo) / _ALONG_STEP_CM)) + 2
    table = family.width_table(k_lo, k_hi, v_lo, n_v)
    jv = (along - v_lo) / _ALONG_STEP_CM
    j0 = np.clip(np.floor(jv).astype(np.intp), 0, n_v - 2)
    frac = jv - j0
    flat_table = table.ravel()
    # cos(pi * (other_phi + k + shift)) = (-1) ** (k + shift) * cos(pi * other_phi) for integer k
    undulation = contrast * np.cos(np.pi * other_phi)

    k_near = np.rint(phi)
    delta = phi - k_near
    side = np.where(delta >= 0, 1.0, -1.0)
    height = np.zeros_like(phi)
    material = np.zeros_like(phi)
    for k, d in ((k_near, delta), (k_near + side, delta - side)):
        ki = np.clip(k.astype(np.intp), k_lo, k_hi)
        flat = (ki - k_lo) * n_v + j0
        w = flat_table[flat] * (1 - frac) + flat_table[flat + 1] * frac
        half = np.clip(_HALF_WIDTH * family.width_scale * width * w, 0.08, 0.95)
        if flat_top > 0:  # full height within flat_top * half, then the raised cosine over the rest
            u = np.maximum(np.abs(d) - flat_top * half, 0.0) / ((1.0 - flat_top) * half)
            profile = np.where(u < 1, np.cos(0.5 * np.pi * u) ** 2, 0.0) * (0.75 + 0.25 * w)
        else:  # the rounded yarn, as before flat_top existed (plates drawn bit for bit as then)
            profile = np.where(np.abs(d) < half, np.cos(0.5 * np.pi * d / half) ** 2, 0.0) * (0.75 + 0.25 * w)
        if ply > 0:
            profile *= 1.0 - ply * np.exp(-0.5 * (d / (0.22 * half)) ** 2)
        if twist > 0:
            turns = 0.5 * d / half + (1 - 2 * (shift % 2)) * 0.7 * family.density * along
            profile *= 1.0 - twist * (0.5 + 0.5 * np.cos(2 * np.pi * turns))
        parity = 1.0 - 2.0 * ((ki + int(shift)) % 2)
        np.maximum(height, profile * (1.0 + parity * undulation), out=height)
        material += profile
    return height, material


def _upsample(small: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a small map spanning the plate to ``shape``."""
    out = small
    for axis, n in enumerate(shape):
        pos = np.linspace(0, out.shape[axis] - 1, n)
        i0 = np.clip(np.floor(pos).astype(np.intp), 0, out.shape[axis] - 2)
        f = pos - i0
        a, b = np.take(out, i0, axis=axis), np.take(out, i0 + 1, axis=axis)
        f = f[:, None] if axis == 0 else f[None, :]
        out = a * (1 - f) + b * f
    return out


def _smooth_field(
    rng: np.random.Generator,
    shape: tuple[int, int],
    px_per_cm: float,
    scale_cm: float,
    elongation: float = 1.0,
) -> np.ndarray:
    """Zero-mean, unit-std random field with correlation length ~``scale_cm``, stretched ``elongation``
    times along a random direction (brush streaks)."""
    rows, cols = shape
    h_cm, w_cm = rows / px_per_cm, cols / px_per_cm
    step = scale_cm / 3.0  # cm per cell of the noise grid
    n = int(math.ceil(math.hypot(h_cm, w_cm) / step)) + 12
    noise = ndimage.gaussian_filter(rng.standard_normal((n, n)), (3.0, 3.0 * elongation), mode="wrap")
    alpha = rng.uniform(0, np.pi)
    lr = max(1.0, min(scale_cm / 4.0, 0.1) * px_per_cm)  # low-resolution sampling step (px)
    ys = (np.arange(int(math.ceil(rows / lr)) + 1) * lr / px_per_cm - h_cm / 2)[:, None]
    xs = (np.arange(int(math.ceil(cols / lr)) + 1) * lr / px_per_cm - w_cm / 2)[None, :]
    cy = n / 2 + (ys * math.cos(alpha) - xs * math.sin(alpha)) / step
    cx = n / 2 + (ys * math.sin(alpha) + xs * math.cos(alpha)) / step
    small = ndimage.map_coordinates(noise, [cy, cx], order=1, mode="wrap")
    full = _upsample(small, (int(round(small.shape[0] * lr)), int(round(small.shape[1] * lr))))[:rows, :cols]
    if full.shape != (rows, cols):  # rounding: pad with the edge values
        full = np.pad(full, ((0, rows - full.shape[0]), (0, cols - full.shape[1])), mode="edge")
    return (full - full.mean()) / (full.std() + 1e-12)


def _brushwork(rng: np.random.Generator, shape: tuple[int, int], px_per_cm: float) -> np.ndarray:
    """Unit-std smooth paint-thickness variation: three streaky layers at different scales."""
    f = np.zeros(shape)
    for scale, weight in ((1.5, 1.0), (0.6, 0.6), (0.25, 0.35)):
        f = f + _smooth_field(rng, shape, px_per_cm, scale, rng.uniform(2.5, 6.0)) * weight
    return f / f.std()


def _impasto(rng: np.random.Generator, shape: tuple[int, int], px_per_cm: float) -> np.ndarray:
    """Lumpy paint thickness, mean 1: lognormal over a random field with lumps of 0.03-0.15 cm, on a
    smoother variation of 0.3-1 cm."""
    lumps = _smooth_field(rng, shape, px_per_cm, float(rng.uniform(0.03, 0.15)), float(rng.uniform(1.0, 2.0)))
    broad = _smooth_field(rng, shape, px_per_cm, float(rng.uniform(0.3, 1.0)), 1.0)
    t = np.exp(float(rng.uniform(0.4, 0.9)) * lumps + 0.4 * broad)
    return t / t.mean()


def _lead_white_strokes(
    rng: np.random.Generator, shape: tuple[int, int], px_per_cm: float, n: int
) -> np.ndarray:
    """``n`` bright strokes: curved bands with sharp (1 px) edges, tapered ends and bristle streaks.

    Each stroke is 0.5-4 cm long (at most 80 % of the plate's short side) and 0.06-0.3 cm wide.
    """
    rows, cols = shape
    out = np.zeros(shape)
    for _ in range(n):
        length = rng.uniform(0.5, max(0.6, min(4.0, 0.8 * min(rows, cols) / px_per_cm))) * px_per_cm
        half_width = rng.uniform(0.03, 0.15) * px_per_cm
        p0 = np.array([rng.uniform(0, rows), rng.uniform(0, cols)])
        direction = rng.uniform(0, 2 * np.pi)
        p2 = p0 + length * np.array([math.sin(direction), math.cos(direction)])
        p1 = (p0 + p2) / 2 + rng.normal(0, 0.2 * length, 2)  # bend
        # The path (a quadratic Bezier curve) sampled every ~0.3 px, so that the distance to the
        # nearest sample is the distance to the curve within ~0.01 px.
        t = np.linspace(0, 1, int(3 * length) + 2)[:, None]
        path = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2
        pad = 1.1 * half_width + 2
        r0, r1 = int(max(path[:, 0].min() - pad, 0)), int(min(path[:, 0].max() + pad, rows))
        c0, c1 = int(max(path[:, 1].min() - pad, 0)), int(min(path[:, 1].max() + pad, cols))
        if r1 <= r0 or c1 <= c0:
            continue
        pixels = np.stack(list(np.mgrid[r0:r1, c0:c1]), axis=-1).reshape(-1, 2)
        dist, nearest = spatial.cKDTree(path).query(pixels, distance_upper_bound=pad)
        inside = np.isfinite(dist)
        dist, along = dist[inside], t[nearest[inside], 0]
        width_here = half_width * (0.6 + 0.4 * np.sin(np.pi * along))
        edge = np.clip(width_here - dist + 0.5, 0, 1)  # 1 px anti-aliased edge
        bristles = 1 + 0.15 * np.sin(2 * np.pi * dist / rng.uniform(2, 6) + rng.uniform(0, 2 * np.pi))
        taper = np.clip(np.minimum(along, 1 - along) / 0.08, 0, 1)
        value = np.zeros(pixels.shape[0])
        value[inside] = rng.uniform(0.25, 0.6) * edge * bristles * taper
        out[r0:r1, c0:c1] += value.reshape(r1 - r0, c1 - c0)
    return out


def _craquelure(
    rng: np.random.Generator, shape: tuple[int, int], px_per_cm: float, strength: float
) -> np.ndarray:
    """Crack network: boundaries of a jittered Voronoi tessellation, ~1.5 px wide, mostly dark.

    Cells are ``0.9 - 0.6 * strength`` cm across; a fraction ``0.5 + 0.5 * strength`` of the
    boundaries is visible; 80 % of the visible length is dark (open cracks), the rest bright.
    """
    rows, cols = shape
    cell_px = (0.9 - 0.6 * strength) * px_per_cm
    n_seeds = max(4, int(rows * cols / cell_px**2))
    mask = np.ones(shape, dtype=bool)
    mask[rng.integers(0, rows, n_seeds), rng.integers(0, cols, n_seeds)] = False
    iy, ix = ndimage.distance_transform_edt(mask, return_distances=False, return_indices=True)
    # Wobble the cell boundaries: look the cell up at displaced positions.
    wob = 0.12 * cell_px
    dy = wob * _smooth_field(rng, shape, px_per_cm, 0.15)
    dx = wob * _smooth_field(rng, shape, px_per_cm, 0.15)
    r = np.clip(np.rint(np.arange(rows)[:, None] + dy).astype(np.intp), 0, rows - 1)
    c = np.clip(np.rint(np.arange(cols)[None, :] + dx).astype(np.intp), 0, cols - 1)
    cell = iy[r, c] * cols + ix[r, c]  # id of the nearest seed
    boundary = np.zeros(shape)
    boundary[1:, :] += cell[1:, :] != cell[:-1, :]
    boundary[:, 1:] += cell[:, 1:] != cell[:, :-1]
    lines = np.clip(ndimage.gaussian_filter(np.minimum(boundary, 1), 0.6) * 2.5, 0, 1)
    visible = _smooth_field(rng, shape, px_per_cm, 0.4) < special.ndtri(min(0.5 + 0.5 * strength, 0.999))
    sign = np.where(_smooth_field(rng, shape, px_per_cm, 0.8) < 0.84, -1.0, 0.6)
    return lines * visible * sign * (0.2 + 0.2 * strength)


def _holes(rng: np.random.Generator, phi_h: np.ndarray, phi_v: np.ndarray, fraction: float) -> np.ndarray:
    """Spots centred on a random ``fraction`` of interstices (the cells between thread centres)."""
    ih, iv = np.floor(phi_h), np.floor(phi_v)
    h0, v0 = int(ih.min()), int(iv.min())
    n_h, n_v = int(ih.max()) - h0 + 1, int(iv.max()) - v0 + 1
    value = np.where(rng.random((n_h, n_v)) < 0.75, 1.0, -1.0) * rng.uniform(0.2, 0.45, (n_h, n_v))
    value[rng.random((n_h, n_v)) >= fraction] = 0.0
    radius = rng.uniform(0.1, 0.17, (n_h, n_v))  # in threads
    i, j = (ih - h0).astype(np.intp), (iv - v0).astype(np.intp)
    r2 = (phi_h - ih - 0.5) ** 2 + (phi_v - iv - 0.5) ** 2
    return value[i, j] * np.exp(-0.5 * r2 / radius[i, j] ** 2)


def _interstice_lattice(rng: np.random.Generator, phi_h: np.ndarray, phi_v: np.ndarray,
                        strength: float) -> np.ndarray:
    """A spot at every interstice (the cells between thread centres), sign and size of ``strength``;
    each spot's amplitude varies by 15 % and its radius is 0.12-0.2 thread (one value per plate)."""
    ih, iv = np.floor(phi_h), np.floor(phi_v)
    h0, v0 = int(ih.min()), int(iv.min())
    n_h, n_v = int(ih.max()) - h0 + 1, int(iv.max()) - v0 + 1
    value = 0.6 * strength * (1.0 + 0.15 * rng.standard_normal((n_h, n_v)))
    radius = rng.uniform(0.12, 0.2)
    i, j = (ih - h0).astype(np.intp), (iv - v0).astype(np.intp)
    r2 = (phi_h - ih - 0.5) ** 2 + (phi_v - iv - 0.5) ** 2
    return value[i, j] * np.exp(-0.5 * r2 / radius**2)


def _lining(rng: np.random.Generator, shape: tuple[int, int], params: WeaveParams) -> np.ndarray:
    """A second plain weave (raised-cosine threads, its own densities and angles), zero mean."""
    ppc = params.px_per_cm
    y, x = np.mgrid[0: shape[0], 0: shape[1]] / ppc
    out = np.zeros(shape)
    for density, along_y in ((params.horizontal_density, True), (params.vertical_density, False)):
        f = density * rng.uniform(0.6, 1.6)
        a = np.radians(rng.uniform(-4, 4))
        u = (y * np.cos(a) + x * np.sin(a)) if along_y else (x * np.cos(a) - y * np.sin(a))
        out += np.cos(np.pi * (u * f + rng.uniform())) ** 4
    return out - out.mean()


def _banding(rng: np.random.Generator, shape: tuple[int, int], strength: float) -> np.ndarray:
    """Gain per row (or per column), smoothed over 1-4 px: multiply the intensity by it."""
    axis = int(rng.integers(2))
    gain = ndimage.gaussian_filter1d(rng.standard_normal(shape[axis]), rng.uniform(1, 4))
    gain = 1.0 + 0.08 * strength * gain / (gain.std() + 1e-12)
    return gain[:, None] if axis == 0 else gain[None, :]


def _cell_blotches(rng: np.random.Generator, phi_h: np.ndarray, phi_v: np.ndarray, strength: float) -> np.ndarray:
    """A random brightness for every interstice and every crossing, as soft spots (radius ~0.3
    thread) centred on them: the uneven look of real weaves at the scale of one cell."""
    out = np.zeros_like(phi_h)
    for offset in (0.5, 0.0):  # interstice centres, then crossings (thread centre lines)
        ih, iv = np.floor(phi_h + 0.5 - offset), np.floor(phi_v + 0.5 - offset)
        h0, v0 = int(ih.min()), int(iv.min())
        n_h, n_v = int(ih.max()) - h0 + 1, int(iv.max()) - v0 + 1
        value = rng.normal(0.0, 0.25 * strength, (n_h, n_v))
        radius = rng.uniform(0.2, 0.4, (n_h, n_v))
        i, j = (ih - h0).astype(np.intp), (iv - v0).astype(np.intp)
        r2 = (phi_h - ih - offset) ** 2 + (phi_v - iv - offset) ** 2
        out += value[i, j] * np.exp(-0.5 * r2 / radius[i, j] ** 2)
    return out


def _grain(rng: np.random.Generator, shape: tuple[int, int], px_per_cm: float, strength: float) -> np.ndarray:
    """Fine texture: band-pass noise (scale 0.003-0.006 cm) plus sparse specks, 80 % bright."""
    sigma = rng.uniform(0.003, 0.006) * px_per_cm
    white = rng.standard_normal(shape)
    band = ndimage.gaussian_filter(white, sigma) - ndimage.gaussian_filter(white, 2 * sigma)
    out = 0.15 * strength * band / (band.std() + 1e-12)
    n_specks = rng.poisson(300 * strength * shape[0] * shape[1] / px_per_cm**2)  # ~300 per cm²
    if n_specks:
        specks = np.zeros(shape)
        rows, cols = rng.integers(0, shape[0], n_specks), rng.integers(0, shape[1], n_specks)
        value = np.where(rng.random(n_specks) < 0.8, 1.0, -1.0) * rng.uniform(0.2, 0.5, n_specks)
        np.add.at(specks, (rows, cols), value)
        radius = max(0.6, 0.006 * px_per_cm)
        out += ndimage.gaussian_filter(specks, radius) * 2 * np.pi * radius**2
    return out


def _equalize(image: np.ndarray, levels: int) -> np.ndarray:
    """Histogram equalisation: map each grey level to its cumulative frequency (full range)."""
    hist = np.bincount(image.ravel(), minlength=levels)
    cdf = np.cumsum(hist)
    cdf_min = cdf[np.nonzero(hist)[0][0]]
    lut = np.round((cdf - cdf_min) / max(cdf[-1] - cdf_min, 1) * (levels - 1))
    return lut.astype(image.dtype)[image]


def render(
    params: WeaveParams,
    families: dict[str, ThreadFamily],
    nuisance_rng: np.random.Generator,
    origin_cm: tuple[float, float] = (0.0, 0.0),
    geometry: _Geometry | None = None,
    tack_phase: float = 0.0,
) -> SyntheticPlate:
    """Render a plate of ``params`` from the fabric ``families`` placed with its top-left at
    ``origin_cm`` (y, x) on the fabric; nuisances (paint, cracks, holes, noise) use ``nuisance_rng``.

    Users call :func:`make_plate` or :meth:`artlens.synth.Roll.cut`.
    """
    ppc = params.px_per_cm
    geo = geometry or _geometry(params, origin_cm, tack_phase)
    fam_h, fam_v = families["horizontal"], families["vertical"]
    phi_h = fam_h.phase(geo.psi["horizontal"])
    phi_v = fam_v.phase(geo.psi["vertical"])
    truth: dict[str, np.ndarray] = {}
    for name, fam in families.items():
        truth[f"{name}_density"], truth[f"{name}_angle"] = _truth(geo.psi[name], fam, name, ppc)

    # Canvas: the ground fills everything above the canvas surface, so the X-ray is bright where the
    # canvas is low (interstices) and dark on the threads, darkest where a thread passes over.
    c = params.weave_contrast
    yarn = {"ply": params.ply_groove, "twist": params.twist, "flat_top": params.flat_top,
            "width": params.thread_width}
    top_h, mat_h = _thread_heights(fam_h, phi_h, geo.along["horizontal"], phi_v, c, 0, **yarn)
    top_v, mat_v = _thread_heights(fam_v, phi_v, geo.along["vertical"], phi_h, c, 1, **yarn)
    if params.thread_balance:
        f_h, f_v = 1.0 - params.thread_balance, 1.0 + params.thread_balance
        top_h, mat_h, top_v, mat_v = top_h * f_h, mat_h * f_h, top_v * f_v, mat_v * f_v
    canvas = 0.6 * np.maximum(top_h, top_v) + 0.08 * (mat_h + mat_v)
    shape = phi_h.shape

    rng = nuisance_rng
    intensity = 1.0 - canvas
    if params.holes > 0:
        intensity += _holes(rng, phi_h, phi_v, params.holes)
    if params.interstice_lattice:
        intensity += _interstice_lattice(rng, phi_h, phi_v, params.interstice_lattice)
    if params.lining > 0:
        intensity += 0.25 * params.lining * _lining(rng, shape, params)
    if params.cell_variation > 0:
        intensity += _cell_blotches(rng, phi_h, phi_v, params.cell_variation)
    if params.paint > 0:
        brush = _brushwork(rng, shape, ppc)
        thickness = np.clip(0.5 + 0.3 * brush, 0, 1)
        intensity = (
            1.0 - (1.0 - intensity) * (1.0 - 0.5 * params.paint * thickness) + 0.25 * params.paint * brush
        )
    if params.impasto > 0:
        lumps = _impasto(rng, shape, ppc)
        intensity = 1.0 - (1.0 - intensity) * np.exp(-2.5 * params.impasto * lumps) \
            + 0.3 * params.impasto * (lumps - 1.0)
    if params.lead_white_strokes:
        intensity += _lead_white_strokes(rng, shape, ppc, params.lead_white_strokes)
    if params.craquelure > 0:
        intensity += _craquelure(rng, shape, ppc, params.craquelure)
    if params.grain > 0:
        intensity += _grain(rng, shape, ppc, params.grain)
    if params.blur_px > 0:
        intensity = ndimage.gaussian_filter(intensity, params.blur_px, mode="nearest")
    if params.banding > 0:
        intensity = intensity * _banding(rng, shape, params.banding)
    level = 0.1 + 0.75 * intensity  # fixed mapping: a clean canvas spans about 0.2..0.85
    if params.noise > 0:
        level += rng.normal(0.0, params.noise, shape)
    level = np.clip(level, 0.0, 1.0)
    if params.invert:
        level = 1.0 - level
    levels = 2**params.bit_depth
    image = np.round(level * (levels - 1)).astype(np.uint8 if params.bit_depth == 8 else np.uint16)
    if params.equalize:
        image = _equalize(image, levels)
    phase = {"horizontal": phi_h.astype(np.float32), "vertical": phi_v.astype(np.float32)}
    return SyntheticPlate(image, ppc, params, truth, phase)


def make_plate(params: WeaveParams | None = None, **overrides: Any) -> SyntheticPlate:
    """Render a synthetic plain-weave X-ray plate and its ground truth.

    Args:
        params: all settings (default :class:`WeaveParams`()).
        **overrides: fields of :class:`WeaveParams` to change, e.g. ``noise=0``.

    Returns:
        A :class:`SyntheticPlate`; ``truth`` holds per-pixel density (threads/cm) and angle (deg)
        maps, ``thread_phase`` the thread centre lines.

    Units:
        cm, px/cm, threads/cm, degrees (see :class:`WeaveParams`).

    References:
        Johnson et al. (2009), Studies in Conservation 56(2), 104-114 (the counting that the
        plates are made to test).

    Example:
        >>> plate = make_plate(height_cm=1.0, width_cm=1.0, seed=3)
        >>> plate.image.shape, plate.image.dtype.name
        ((200, 200), 'uint8')
        >>> abs(plate.mean_truth()["vertical_density"] - 15.0) < 0.3
        True
    """
    params = _with_overrides(params, overrides)
    fabric_h, fabric_v, nuisance = (
        np.random.default_rng(s) for s in np.random.SeedSequence(params.seed).spawn(3)
    )
    tack_phase = float(nuisance.uniform())
    geo = _geometry(params, (0.0, 0.0), tack_phase)
    families = {}
    for name, rng in (("horizontal", fabric_h), ("vertical", fabric_v)):
        psi, along = geo.psi[name], geo.along[name]
        families[name] = ThreadFamily.generate(
            rng,
            getattr(params, f"{name}_density"),
            (float(psi.min()), float(psi.max())),
            (float(along.min()) - 1.0, float(along.max()) + 1.0),
            params.spacing_jitter,
            params.thickness_variation,
            params.slub_rate,
        )
    return render(params, families, nuisance, geometry=geo)


def write_plate_tiff(path: str | Path, plate: SyntheticPlate) -> Path:
    """Write the plate image as a TIFF with its resolution and parameters (overwrites ``path``).

    The resolution tags are ``px_per_cm`` in both directions with ResolutionUnit CENTIMETER; the
    ImageDescription is JSON ``{"artlens_synth": {"params": ..., "mean_truth": ...,
    "roll_origin_cm": ...}}``. Truth maps are not written.

    Returns:
        The path written.
    """
    import tifffile

    path = Path(path)
    description = json.dumps(
        {
            "artlens_synth": {
                "params": asdict(plate.params),
                "mean_truth": plate.mean_truth(),
                "roll_origin_cm": plate.roll_origin_cm,
            }
        }
    )
    tifffile.imwrite(
        path,
        plate.image,
        resolution=(plate.px_per_cm, plate.px_per_cm),
        resolutionunit="CENTIMETER",
        description=description,
        metadata=None,
    )
    return path
