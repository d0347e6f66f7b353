"""One entry point for every thread counter: :func:`count_threads` ``(plate, method, params)``.

Each method has its own parameters object (:data:`METHODS`):

- ``"spectral"``: :class:`~artlens.canvas.threads.spectral.SpectralParams`, the windowed 2-D FFT
  (numpy/scipy only);
- ``"cnn"``: :class:`~artlens.canvas.threads.cnn.CnnParams`, a thread CNN: the phase network or a
  density regressor such as regVGG (imports torch when it runs).

Both measure the same window grid (:class:`~artlens.canvas.threads.grid.WindowGrid`) and return a
:class:`~artlens.canvas.threads.result.ThreadCountResult`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from artlens.canvas.threads.cnn import CnnParams, count_threads_cnn
from artlens.canvas.threads.result import ThreadCountResult
from artlens.canvas.threads.spectral import SpectralParams, count_threads_spectral
from artlens.errors import InvalidParameterError
from artlens.io.image import Plate

METHODS: dict[str, type[SpectralParams] | type[CnnParams]] = {"spectral": SpectralParams, "cnn": CnnParams}
"""Counting methods and the parameters object each takes."""

CountParams = SpectralParams | CnnParams


def count_threads(
    plate: Plate | np.ndarray,
    method: str = "spectral",
    params: CountParams | None = None,
    *,
    px_per_cm: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ThreadCountResult:
    """Thread densities and angles over a plate, per window, by ``method``.

    Args:
        plate: a :class:`~artlens.io.Plate` (read band by band) or a 2-D array (then ``px_per_cm`` is
            required).
        method: ``"spectral"`` or ``"cnn"`` (:data:`METHODS`).
        params: the method's parameters object (:data:`METHODS`); ``None``: its defaults.
        px_per_cm: resolution, px/cm; overrides the plate's own.
        progress: called as ``progress(done, total)`` after each band of windows.

    Returns:
        :class:`~artlens.canvas.threads.result.ThreadCountResult` (``result.method`` is ``method``).

    Raises:
        InvalidParameterError: an unknown method, or parameters of another method.

    Example:
        >>> import numpy as np
        >>> y = np.arange(400)[:, None] + np.zeros((1, 400))
        >>> grating = np.cos(2 * np.pi * 12.0 * y / 200.0)  # 12 threads/cm at 200 px/cm
        >>> r = count_threads(grating, "spectral", SpectralParams(step_cm=0.5), px_per_cm=200.0)
        >>> r.method, r.horizontal.density.shape, round(r.horizontal.stats()["threads_per_cm"]["mean"], 2)
        ('spectral', (3, 3), 12.0)
    """
    kind = METHODS.get(method)
    if kind is None:
        raise InvalidParameterError(f"method must be one of {', '.join(METHODS)}, got {method!r}", param="method")
    if params is not None and not isinstance(params, kind):
        raise InvalidParameterError(f"method {method!r} takes {kind.__name__}, got {type(params).__name__}",
                                    param="params")
    if method == "spectral":
        assert params is None or isinstance(params, SpectralParams)
        return count_threads_spectral(plate, params, px_per_cm=px_per_cm, progress=progress)
    assert params is None or isinstance(params, CnnParams)
    return count_threads_cnn(plate, params, px_per_cm=px_per_cm, progress=progress)
