"""A roll (bolt) of synthetic canvas from which several plates can be cut.

Paintings on canvas from one roll share its thread-spacing sequence; matching those sequences is
how canvases are attributed to a common roll (Johnson et al. 2010). A :class:`Roll` draws its fabric
once from its seed; :meth:`Roll.cut` renders a plate from any place on it, with its own nuisances
(angle, paint, cracks, noise ...) drawn from the cut's seed.

References:
    Johnson, C. R., Johnson, D. H., Hamashima, N., Yang, H. S. and Hendriks, E. (2010). Weave
    matching and the thread-count features of canvas rolls. In *Vincent van Gogh: The Yellow
    House*, Van Gogh Museum.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np

from artlens.errors import InvalidParameterError
from artlens.synth.weave import (
    _FABRIC_FIELDS,
    SyntheticPlate,
    ThreadFamily,
    WeaveParams,
    _geometry,
    _with_overrides,
    render,
)

_MARGIN_CM = 3.0  # fabric drawn beyond the roll's edges, for rotated or warped cuts near them
_YARN_RANGES = {
    "spacing_jitter": (0.0, 0.3),
    "thickness_variation": (0.0, 0.5),
    "slub_rate": (0.0, np.inf),
    "spacing_correlation": (0.0, 0.95),
    "thread_width": (0.3, 2.2),
    "stripe_contrast": (0.0, 1.0),
    "stripe_threads": (1.0, 1000.0),
}


def _pair(name: str, value: float | tuple[float, float]) -> tuple[float, float]:
    """``(horizontal, vertical)`` of a yarn statistic given as one value or a pair."""
    if np.isscalar(value):  # np.isscalar does not narrow the type: casts below
        one = float(cast(float, value))
        return one, one
    v = tuple(float(x) for x in cast("tuple[float, float]", value))
    if len(v) != 2:
        raise InvalidParameterError(f"{name} must be a number or a (horizontal, vertical) pair, got {value}")
    return v[0], v[1]


class Roll:
    """A bolt of plain-weave fabric, ``width_cm`` wide and ``length_cm`` long.

    The warp is the ``vertical`` threads: they run along the roll's length (y), and their spacing
    and thickness sequence across the width (x) is fixed by ``seed``. The weft (``horizontal``
    threads) is fixed by the seed too, along the length. Roll coordinates are ``(y, x)`` cm from
    the roll's top-left corner.

    Args:
        horizontal_density, vertical_density: nominal weft and warp densities (threads/cm).
        seed: seed of the fabric.
        length_cm, width_cm: size of the roll (cm).
        spacing_jitter, thickness_variation, slub_rate: yarn statistics, as in
            :class:`~artlens.synth.WeaveParams`.
        spacing_correlation: AR(1) coefficient (0..0.95) of the spacing sequence: runs of tighter
            and looser threads (:meth:`~artlens.synth.ThreadFamily.generate`).
        thread_width: half-width of the threads relative to the default 0.42 spacing (0.3..2.2).
        stripe_contrast, stripe_threads: bands of thicker and thinner yarn: log-width spread of the
            bands and their mean length in threads.

        Every yarn statistic may be one value for both directions or a ``(horizontal, vertical)``
        pair (weft and warp spun differently). ``fabric`` holds the values as given.

    Example:
        >>> roll = Roll(12.0, 15.0, seed=1, length_cm=20, width_cm=20)
        >>> a = roll.cut(0.0, 2.0, 1.0, 1.0, noise=0)
        >>> b = roll.cut(0.5, 12.0, 1.0, 1.0, noise=0)
        >>> ka, xa = a.thread_centres("vertical")
        >>> kb, xb = b.thread_centres("vertical")
        >>> k = np.intersect1d(ka, kb)
        >>> bool(np.allclose(xa[np.isin(ka, k)] - 0.5, xb[np.isin(kb, k)], atol=1e-3))
        True
    """

    warp_direction = "vertical"

    def __init__(
        self,
        horizontal_density: float,
        vertical_density: float,
        seed: int = 0,
        *,
        length_cm: float = 300.0,
        width_cm: float = 150.0,
        spacing_jitter: float | tuple[float, float] = 0.04,
        thickness_variation: float | tuple[float, float] = 0.15,
        slub_rate: float | tuple[float, float] = 0.0,
        spacing_correlation: float | tuple[float, float] = 0.0,
        thread_width: float | tuple[float, float] = 1.0,
        stripe_contrast: float | tuple[float, float] = 0.0,
        stripe_threads: float | tuple[float, float] = 12.0,
    ) -> None:
        if length_cm <= 0 or width_cm <= 0:
            raise InvalidParameterError("roll length_cm and width_cm must be positive")
        self.seed = seed
        self.length_cm = float(length_cm)
        self.width_cm = float(width_cm)
        yarn_in = {"spacing_jitter": spacing_jitter, "thickness_variation": thickness_variation,
                   "slub_rate": slub_rate, "spacing_correlation": spacing_correlation,
                   "thread_width": thread_width, "stripe_contrast": stripe_contrast,
                   "stripe_threads": stripe_threads}
        per_dir = {k: _pair(k, v) for k, v in yarn_in.items()}
        for k, (h, v) in per_dir.items():
            lo, hi = _YARN_RANGES.get(k, (-np.inf, np.inf))
            if not (lo <= h <= hi and lo <= v <= hi):
                raise InvalidParameterError(f"{k} must lie in [{lo}, {hi}], got {yarn_in[k]}")
        self.fabric: dict[str, Any] = {  # WeaveParams fields (all floats), passed as keywords
            "horizontal_density": float(horizontal_density),
            "vertical_density": float(vertical_density),
            # the rendering parameters get the mean of the two directions (only make_plate uses them)
            "spacing_jitter": float(np.mean(per_dir["spacing_jitter"])),
            "thickness_variation": float(np.mean(per_dir["thickness_variation"])),
            "slub_rate": float(np.mean(per_dir["slub_rate"])),
        }
        WeaveParams(**self.fabric).validate()
        self.yarn = {k: (v if np.isscalar(v) else tuple(float(x) for x in cast("tuple[float, float]", v)))
                     for k, v in yarn_in.items()}
        rng_h, rng_v = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
        m = _MARGIN_CM

        def family(rng: np.random.Generator, i: int, density: float, across: float, along: float) -> ThreadFamily:
            y = {k: v[i] for k, v in per_dir.items()}
            return ThreadFamily.generate(
                rng, density, (-m * density, (across + m) * density), (-m, along + m),
                y["spacing_jitter"], y["thickness_variation"], y["slub_rate"],
                spacing_correlation=y["spacing_correlation"], thread_width=y["thread_width"],
                stripe_contrast=y["stripe_contrast"], stripe_threads=y["stripe_threads"],
            )

        self.families = {
            # weft: across-coordinate is y (the length), along-coordinate x (the width)
            "horizontal": family(rng_h, 0, horizontal_density, length_cm, width_cm),
            # warp: across-coordinate is x, along-coordinate y
            "vertical": family(rng_v, 1, vertical_density, width_cm, length_cm),
        }

    def warp_spacings_cm(self) -> np.ndarray:
        """Centre-to-centre spacings (cm) of consecutive warp threads across the whole roll."""
        fam = self.families["vertical"]
        return np.diff(fam.centres) / fam.density

    def cut(
        self,
        x_offset_cm: float,
        y_offset_cm: float,
        height_cm: float,
        width_cm: float,
        seed: int = 0,
        **overrides: Any,
    ) -> SyntheticPlate:
        """Render the plate whose top-left corner lies at ``(y_offset_cm, x_offset_cm)`` on the roll.

        Args:
            x_offset_cm, y_offset_cm: position of the plate's top-left corner on the roll (cm).
            height_cm, width_cm: plate size (cm).
            seed: seed of the nuisances (paint, cracks, holes, noise, tack positions).
            **overrides: other :class:`~artlens.synth.WeaveParams` fields (angles, paint, noise,
                px_per_cm ...); the fabric fields (densities, yarn statistics) belong to the roll.

        Returns:
            A :class:`~artlens.synth.SyntheticPlate` with ``roll_origin_cm`` set; its thread
            indices (``thread_phase``, :meth:`~artlens.synth.SyntheticPlate.thread_centres`) are
            the roll's.
        """
        fabric_given = sorted(set(overrides) & set(_FABRIC_FIELDS))
        if fabric_given:
            raise InvalidParameterError(
                f"{fabric_given} are fixed by the roll; make another Roll to change them"
            )
        base = WeaveParams(height_cm=height_cm, width_cm=width_cm, seed=seed, **self.fabric)
        params = _with_overrides(base, overrides)
        if not (
            0 <= x_offset_cm
            and x_offset_cm + width_cm <= self.width_cm
            and 0 <= y_offset_cm
            and y_offset_cm + height_cm <= self.length_cm
        ):
            raise InvalidParameterError(
                f"cut at (x={x_offset_cm}, y={y_offset_cm}) cm of {width_cm}x{height_cm} cm "
                f"does not fit on the {self.width_cm} cm wide, {self.length_cm} cm long roll"
            )
        nuisance = np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[2])
        tack_phase = float(nuisance.uniform())
        origin = (float(y_offset_cm), float(x_offset_cm))
        geo = _geometry(params, origin, tack_phase)
        for name, fam in self.families.items():
            psi = geo.psi[name]
            if psi.min() < fam.centres[0] or psi.max() > fam.centres[-1]:
                raise InvalidParameterError("the rotated or warped cut reaches beyond the roll's edge")
        plate = render(params, self.families, nuisance, origin, geometry=geo)
        plate.roll_origin_cm = origin
        return plate
