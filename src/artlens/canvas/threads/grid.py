"""The window grid over a plate: square windows ``window_cm`` wide, every ``step_cm``, in cm and px.

Every thread counter (spectral, phase CNN, density regressor) measures the same grid, worked out here
once: the window side and step rounded to whole pixels, as many windows as fit along each axis, and
the grid centred on the plate (the pixels left over are split evenly between both edges). Window
``(i, j)`` covers plate rows ``top[i] : top[i] + window_px`` and columns ``left[j] : left[j] +
window_px``; its centre, in cm from the plate's top-left corner, is ``(y_cm[i], x_cm[j])``.

:data:`DEFAULT_WINDOW_CM` and :data:`DEFAULT_STEP_CM` are the defaults of every counter and command,
and :func:`check_window` is the one check of a window and step.

Example:
    >>> g = WindowGrid.over((550, 700), px_per_cm=200.0)  # a 2.75 x 3.5 cm plate
    >>> g.window_px, g.step_px, g.map_shape, g.count
    (200, 100, (4, 6), 24)
    >>> float(g.x_cm[0]), float(g.y_cm[0]), g.box(0, 0)
    (0.5, 0.625, (25, 0, 225, 200))
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from artlens.errors import InvalidImageError, InvalidParameterError

DEFAULT_WINDOW_CM = 1.0
"""Side of the square counting window, cm: the default of every thread counter and command."""
DEFAULT_STEP_CM = 0.5
"""Distance between neighbouring window centres, cm."""


def check_window(window_cm: float, step_cm: float) -> None:
    """Raise :class:`~artlens.errors.InvalidParameterError` unless the window and step are positive
    finite lengths (cm)."""
    for name, value in (("window_cm", window_cm), ("step_cm", step_cm)):
        try:
            ok = math.isfinite(value) and value > 0
        except TypeError:
            ok = False
        if not ok:
            raise InvalidParameterError(f"{name} must be a positive number of cm, got {value!r}", param=name)


def window_px(window_cm: float, px_per_cm: float) -> int:
    """A window side of ``window_cm`` in whole pixels at ``px_per_cm``."""
    return int(round(window_cm * px_per_cm))


@dataclass(frozen=True)
class WindowGrid:
    """Square windows over a plate, in cm and px (see the module docstring).

    Attributes:
        plate_shape_px: ``(rows, cols)`` of the plate.
        px_per_cm: the plate's resolution.
        window_cm, step_cm: as asked; ``window_px``, ``step_px``: rounded to whole pixels.
        ny, nx: windows down and across; the maps have shape ``(ny, nx)``.
        y0, x0: top-left corner of the first window, px.
    """

    plate_shape_px: tuple[int, int]
    px_per_cm: float
    window_cm: float
    step_cm: float
    window_px: int
    step_px: int
    ny: int
    nx: int
    y0: int
    x0: int

    @classmethod
    def over(cls, shape: tuple[int, int], px_per_cm: float, window_cm: float = DEFAULT_WINDOW_CM,
             step_cm: float = DEFAULT_STEP_CM, *, fixed_window: bool = False) -> WindowGrid:
        """The grid of ``window_cm`` windows every ``step_cm`` over a plate of ``shape`` px.

        Args:
            fixed_window: the window is a model's own (not the caller's choice): the error for a plate
                smaller than it says so instead of suggesting a smaller ``window_cm``.

        Raises:
            InvalidParameterError: window or step not positive.
            InvalidImageError: the plate is smaller than one window.
        """
        check_window(window_cm, step_cm)
        ppc = float(px_per_cm)
        h, w = int(shape[0]), int(shape[1])
        n = window_px(window_cm, ppc)
        step = max(1, int(round(step_cm * ppc)))
        if n > h or n > w:
            size = f"the plate ({h / ppc:.2f} x {w / ppc:.2f} cm) is smaller than the"
            if fixed_window:
                raise InvalidImageError(f"{size} model's {window_cm:g} cm window")
            raise InvalidImageError(f"{size} {window_cm:g} cm window; use window_cm {min(h, w) / ppc:.2f} or less",
                                    param="window_cm")
        ny, nx = (h - n) // step + 1, (w - n) // step + 1
        y0 = (h - n - (ny - 1) * step) // 2
        x0 = (w - n - (nx - 1) * step) // 2
        return cls((h, w), ppc, window_cm, step_cm, n, step, ny, nx, y0, x0)

    @property
    def map_shape(self) -> tuple[int, int]:
        """``(ny, nx)``: the shape of every per-window map."""
        return self.ny, self.nx

    @property
    def count(self) -> int:
        """Number of windows."""
        return self.ny * self.nx

    @property
    def tops(self) -> np.ndarray:
        """First plate row of each row of windows, px, ``(ny,)``."""
        return self.y0 + np.arange(self.ny) * self.step_px

    @property
    def lefts(self) -> np.ndarray:
        """First plate column of each column of windows, px, ``(nx,)``."""
        return self.x0 + np.arange(self.nx) * self.step_px

    @property
    def y_cm(self) -> np.ndarray:
        """Window centres down the plate, cm, ``(ny,)``."""
        return (self.tops + self.window_px / 2) / self.px_per_cm

    @property
    def x_cm(self) -> np.ndarray:
        """Window centres across the plate, cm, ``(nx,)``."""
        return (self.lefts + self.window_px / 2) / self.px_per_cm

    def box(self, i: int, j: int) -> tuple[int, int, int, int]:
        """``(top, left, bottom, right)`` plate px of window ``(i, j)`` (bottom and right exclusive)."""
        top, left = self.y0 + i * self.step_px, self.x0 + j * self.step_px
        return top, left, top + self.window_px, left + self.window_px

    def boxes(self) -> np.ndarray:
        """``(ny, nx, 4)`` int array of every window's ``(top, left, bottom, right)``, px."""
        top, left = np.meshgrid(self.tops, self.lefts, indexing="ij")
        return np.stack([top, left, top + self.window_px, left + self.window_px], axis=-1)

    def parameters(self) -> dict[str, float | int]:
        """The grid as the counters record it: ``window_cm``, ``step_cm``, ``window_px``, ``step_px``."""
        return {"window_cm": self.window_cm, "step_cm": self.step_cm, "window_px": self.window_px,
                "step_px": self.step_px}
