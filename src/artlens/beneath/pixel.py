"""The ``pixel`` method: per-pixel, multi-scale evidence of what the visible colours do not explain.

The superpixel maps (``gat``, ``gcn``) give one value per region, so a line thinner than a region is
blurred into it. This method scores every pixel. Its question is the one the other maps ask — *is the
other view darker here than the visible colours predict?* — asked per pixel, at two spatial scales
of the colour model and three of the evidence:

1. **Global colour model.** The other view is predicted from the visible colours by a robust,
   smooth look-up table: values on a ``grid``³ lattice over R, G, B, read by trilinear interpolation,
   fitted to a pixel sample by iteratively reweighted least squares with Huber weights and a
   smoothness penalty (the squared differences of neighbouring lattice values). It follows any
   smooth colour→IR relation — paints whose IR owes nothing to a formula of their colour, mixtures
   varying across a patch, black decoys painted on top (dark in both views: the table learns that
   black reads dark) — while hidden content, a minority of the pixels of any colour, gets low weight.
   With it, a smooth multiplicative lighting field of the other view (a polynomial of degree
   ``illumination_degree`` in the pixel coordinates: lamp fall-off, uneven illumination) is fitted
   robustly and divided out, alternating twice with the table. Pixels the other view does not cover
   take the prediction (they are explained by definition).
2. **Residual registration.** The predicted view and the observed one are aligned by sub-pixel
   phase correlation (the prediction has the visible image's geometry); a shift of up to
   ``max_shift_px`` is removed from the observed view, so that thin lines land on their pixels.
3. **Local colour model.** The same look-up table (a coarser ``local_grid``) is fitted to the
   global model's residual on overlapping tiles of about ``1/tiles`` of the image side and blended
   with tent weights. It absorbs what varies across the painting: uneven illumination, paints that
   look alike but differ in the infrared in different places.
4. **Evidence.** For each of the two predictions: the prediction is lightly smoothed (σ 0.5 px) and
   replaced by its minimum over ``±tolerance_px`` (a pixel is explained when a neighbour within the
   tolerance predicts it as dark: robust to a pixel of misregistration and to a blurrier other view
   at paint and decoy edges); the residual ``prediction − observed`` is smoothed at each of
   ``sigmas`` px and divided by its robust scale (MAD); the largest of these z-scores is kept
   (1-2 px lines favour no smoothing, broad shapes favour more).
5. **Map.** The larger of the global and the local z-scores, minus ``peak`` times its shortfall to
   the 3 × 3 maximum (pixels beside a stronger line rank below the line itself).

Nothing is learned from examples: every parameter is fitted on the image itself, so there is no
training domain to overfit. Units of the map: robust standard deviations of the residual (a z-score,
not a probability); higher = more likely hidden content.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from artlens.errors import InvalidImageError, InvalidParameterError

__all__ = ["PixelParams", "fit_colour_lut", "lut_predict", "pixel_evidence"]


@dataclass(frozen=True)
class PixelParams:
    """Parameters of :func:`pixel_evidence` (the defaults are the shipped method).

    Attributes:
        grid: lattice points per colour axis of the global look-up table (``grid**3`` values).
        smoothness: weight of the global table's smoothness penalty (relative to the data).
        local_grid: lattice points per axis of each tile's table.
        tiles: the tiles' side is ``min(H, W) / tiles`` (at least 48 px); they overlap by half.
        tolerance_px: a pixel is explained by the darkest prediction within this many px.
        sigmas: smoothing scales of the evidence (px; 0 = none).
        peak: weight of the shortfall to the 3 × 3 maximum (0 = none).
        illumination_degree: degree of the polynomial (in the pixel coordinates) of a smooth multiplicative
            lighting field of the other view, fitted with the global table (0 = none).
        max_shift_px: largest residual shift removed by the phase-correlation step (0 = no step).
        max_samples: pixels sampled for the global fit.
        tile_samples: pixels sampled per tile.
        iterations: IRLS iterations of each fit.
    """

    grid: int = 12
    smoothness: float = 1.0
    local_grid: int = 6
    tiles: float = 3.0
    tolerance_px: int = 1
    sigmas: tuple[float, ...] = (0.0, 0.7, 1.4)
    peak: float = 0.5
    illumination_degree: int = 2
    max_shift_px: float = 3.0
    max_samples: int = 60_000
    tile_samples: int = 8_000
    iterations: int = 5

    def check(self) -> None:
        """Raise :class:`InvalidParameterError` on out-of-range values."""
        if not (3 <= self.grid <= 32 and 2 <= self.local_grid <= 16):
            raise InvalidParameterError("grid must lie in 3..32 and local_grid in 2..16")
        if not (self.smoothness > 0 and self.tiles >= 1 and 0 <= self.tolerance_px <= 5 and self.peak >= 0):
            raise InvalidParameterError("smoothness must be > 0, tiles >= 1, tolerance_px in 0..5, peak >= 0")
        if not self.sigmas or any(s < 0 or s > 10 for s in self.sigmas):
            raise InvalidParameterError("sigmas must be one or more scales in [0, 10] px")
        if not 0 <= self.illumination_degree <= 4:
            raise InvalidParameterError("illumination_degree must lie in 0..4")
        if not (0 <= self.max_shift_px <= 16 and self.max_samples >= 100 and self.tile_samples >= 100
                and 1 <= self.iterations <= 50):
            raise InvalidParameterError("max_shift_px must lie in [0, 16], samples be >= 100, iterations in 1..50")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["sigmas"] = list(self.sigmas)
        return d


# -- the colour look-up table -----------------------------------------------------------------------------
def _corners(x: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Lattice indices ``(N, 8)`` (int32) and trilinear weights ``(N, 8)`` (float32) of colours ``x`` ``(N, 3)``
    in [0, 1] on an ``n``³ lattice (index ``(r * n + g) * n + b``)."""
    g = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0) * np.float32(n - 1)
    i0 = np.minimum(g.astype(np.int32), n - 2)
    f = g - i0
    base = (i0[:, 0] * n + i0[:, 1]) * n + i0[:, 2]
    offsets = np.array([(a * n + b) * n + c for a in (0, 1) for b in (0, 1) for c in (0, 1)], np.int32)
    idx = base[:, None] + offsets[None, :]
    fr, fg, fb = f[:, 0:1], f[:, 1:2], f[:, 2:3]
    rg = np.concatenate([(1 - fr) * (1 - fg), (1 - fr) * fg, fr * (1 - fg), fr * fg], axis=1)  # (N, 4)
    wts = np.empty((len(g), 8), np.float32)
    wts[:, 0::2] = rg * (1 - fb)
    wts[:, 1::2] = rg * fb
    return idx, wts


def _laplacian(n: int) -> Any:
    """Sparse ``D^T D`` of the first differences along the three axes of an ``n``³ lattice."""
    from scipy import sparse

    ar = np.arange(n**3).reshape(n, n, n)
    a = np.concatenate([np.take(ar, np.arange(n - 1), axis=ax).ravel() for ax in range(3)])
    b = np.concatenate([np.take(ar, np.arange(1, n), axis=ax).ravel() for ax in range(3)])
    e = np.arange(len(a))
    D = sparse.csr_matrix((np.r_[np.ones(len(a)), -np.ones(len(a))], (np.r_[e, e], np.r_[a, b])), shape=(len(a), n**3))
    return (D.T @ D).tocsr()


_LAPLACIANS: dict[int, Any] = {}


def fit_colour_lut(x: np.ndarray, y: np.ndarray, *, grid: int = 12, smoothness: float = 1.0, ridge: float = 0.0,
                   iterations: int = 5) -> tuple[np.ndarray, float]:
    """Robust smooth look-up table ``colour → value``, fitted by IRLS with Huber weights.

    Minimises ``Σ_i ρ(y_i − Σ_c φ_ic v_c) + μ (smoothness · vᵀ L v + ridge · |v|²)``, where ``φ_i`` are the
    trilinear weights of colour ``x_i`` on the ``grid``³ lattice, ``ρ`` the Huber loss (``k = 1.345``
    robust standard deviations, the scale re-estimated by the MAD at each step), ``L`` the lattice's
    graph Laplacian and ``μ = 0.01 N / grid³`` (so the penalty is relative to the data per lattice
    value). The smoothness term fills lattice values that no colour reaches and keeps the table from
    following a handful of pixels.

    Args:
        x: ``(N, 3)`` colours in ``[0, 1]``.
        y: ``(N,)`` values to predict.
        grid: lattice points per axis, >= 3.
        smoothness: weight of the smoothness penalty.
        ridge: weight of a penalty towards 0 (for tables of residuals).
        iterations: IRLS iterations.

    Returns:
        ``(values, scale)``: the ``grid**3`` lattice values (float64, index ``(r * grid + g) * grid + b``)
        and the robust standard deviation of the last residual.

    References:
        Huber, P. J. (1964). Robust estimation of a location parameter. Ann. Math. Statist. 35(1), 73-101.
    """
    from scipy import sparse
    from scipy.sparse.linalg import cg

    m = grid**3
    idx, wts = _corners(np.asarray(x), grid)
    y = np.asarray(y, dtype=np.float64)
    if grid not in _LAPLACIANS:
        _LAPLACIANS[grid] = _laplacian(grid)
    mu = 0.01 * len(y) / m
    reg = mu * smoothness * _LAPLACIANS[grid] + (mu * ridge + 1e-9 * len(y)) * sparse.identity(m, format="csr")
    rows = np.repeat(np.arange(len(y)), 8)
    phi = sparse.csr_matrix((wts.ravel().astype(np.float64), (rows, idx.ravel())), shape=(len(y), m))
    w = np.ones(len(y))
    v = np.full(m, 0.0 if ridge > 0 else float(np.median(y)))
    scale = 1.0
    dense = m <= 600
    for _ in range(iterations):
        A = (phi.T @ phi.multiply(w[:, None])).tocsr() + reg
        rhs = phi.T @ (w * y)
        if dense:
            v = np.linalg.solve(A.toarray(), rhs)
        else:
            v, _ = cg(A, rhs, x0=v, rtol=1e-6, maxiter=300)
        r = y - phi @ v
        scale = 1.4826 * float(np.median(np.abs(r - np.median(r)))) + 1e-6
        k = 1.345 * scale
        w = np.where(np.abs(r) <= k, 1.0, k / np.maximum(np.abs(r), 1e-12))
    return v, scale


def lut_predict(values: np.ndarray, x: np.ndarray, grid: int, chunk: int = 1 << 19) -> np.ndarray:
    """Read a look-up table of :func:`fit_colour_lut` at colours ``x`` ``(..., 3)``; float32 ``(...)``."""
    flat = np.asarray(x, dtype=np.float32).reshape(-1, 3)
    out = np.empty(len(flat), np.float32)
    v = np.asarray(values, dtype=np.float32)
    for a in range(0, len(flat), chunk):
        idx, wts = _corners(flat[a : a + chunk], grid)
        out[a : a + chunk] = (v[idx] * wts).sum(axis=1)
    return out.reshape(np.shape(x)[:-1])


# -- the method -------------------------------------------------------------------------------------------
def _mad(a: np.ndarray, rng: np.random.Generator, n: int = 200_000) -> float:
    flat = a.ravel()
    if flat.size > n:
        flat = flat[rng.integers(0, flat.size, n)]
    return 1.4826 * float(np.median(np.abs(flat - np.median(flat)))) + 1e-9


def _tile_origins(length: int, tile: int) -> list[int]:
    """Starts of tiles of ``tile`` px overlapping by about half and covering ``length`` px."""
    if length <= tile:
        return [0]
    k = int(np.ceil((length - tile) / max(1, tile // 2)))
    return sorted({int(round(i * (length - tile) / k)) for i in range(k + 1)})


def _one_blas_thread() -> Any:
    """A context in which BLAS uses one thread (``threadpoolctl``; a no-op without it)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def _local_correction(rgb: np.ndarray, residual: np.ndarray, valid: np.ndarray, p: PixelParams,
                      rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    """Tile-wise robust look-up tables of ``residual`` on the colours, blended with tent weights ``(H, W)``.

    Each pixel's lattice corners are computed once: the image is cut into cells between consecutive tile
    edges, and every table covering a cell is read with the cell's corners."""
    h, w = residual.shape
    tile = int(max(48, round(min(h, w) / p.tiles)))
    th, tw = min(tile, h), min(tile, w)
    ys, xs = _tile_origins(h, th), _tile_origins(w, tw)
    tables: dict[tuple[int, int], np.ndarray] = {}
    with _one_blas_thread():  # small dense solves: threads cost more than they give
        for y0, x0 in ((y0, x0) for y0 in ys for x0 in xs):
            sl = (slice(y0, y0 + th), slice(x0, x0 + tw))
            ok = np.flatnonzero(valid[sl].ravel())
            if ok.size < 100:
                continue
            if ok.size > p.tile_samples:
                ok = rng.choice(ok, p.tile_samples, replace=False)
            colours = rgb[sl].reshape(-1, 3)
            tables[(y0, x0)], _ = fit_colour_lut(colours[ok], residual[sl].ravel()[ok], grid=p.local_grid,
                                                 smoothness=1.0, ridge=1.0, iterations=max(1, p.iterations - 1))
    out = np.zeros((h, w), np.float32)

    def tent(start: int, size: int, lo: int, hi: int) -> np.ndarray:
        t = (np.arange(lo, hi) - start + 0.5) / size  # position in the tile, 0..1
        return (1.0 - np.abs(2.0 * t - 1.0) + 1e-3).astype(np.float32)

    cuts_y = sorted({0, h, *ys, *(y + th for y in ys)})
    cuts_x = sorted({0, w, *xs, *(x + tw for x in xs)})
    for ya, yb in zip(cuts_y[:-1], cuts_y[1:], strict=True):
        for xa, xb in zip(cuts_x[:-1], cuts_x[1:], strict=True):
            cover = [(y0, x0) for (y0, x0) in tables if y0 <= ya and yb <= y0 + th and x0 <= xa and xb <= x0 + tw]
            if not cover:
                continue
            idx, wts = _corners(rgb[ya:yb, xa:xb].reshape(-1, 3), p.local_grid)
            acc = np.zeros((yb - ya) * (xb - xa), np.float32)
            wsum = np.zeros_like(acc)
            for y0, x0 in cover:
                wt = np.outer(tent(y0, th, ya, yb), tent(x0, tw, xa, xb)).ravel()
                acc += wt * (tables[(y0, x0)].astype(np.float32)[idx] * wts).sum(axis=1)
                wsum += wt
            out[ya:yb, xa:xb] = (acc / wsum).reshape(yb - ya, xb - xa)
    return out, {"tile_px": tile, "tiles_fitted": len(tables)}


def _fit_illumination(pred: np.ndarray, other: np.ndarray, sample: np.ndarray, degree: int,
                      iterations: int) -> np.ndarray:
    """A smooth multiplicative field ``f (H, W)`` with ``other ≈ f · pred``: a polynomial of degree ``degree``
    in the pixel coordinates, fitted by IRLS with Huber weights on the ``sample`` pixels (uneven lighting,
    lamp fall-off)."""
    h, w = pred.shape
    yy, xx = np.divmod(sample, w)

    def basis(y: np.ndarray, x: np.ndarray) -> np.ndarray:
        u, v = 2.0 * x / max(w - 1, 1) - 1.0, 2.0 * y / max(h - 1, 1) - 1.0
        return np.stack([u**i * v**j for i in range(degree + 1) for j in range(degree + 1 - i)], axis=1)

    B = basis(yy, xx)
    X = B * pred.ravel()[sample, None]
    y = other.ravel()[sample].astype(np.float64)
    wts = np.ones(len(y))
    beta = np.zeros(X.shape[1])
    for _ in range(iterations):
        Xw = X * wts[:, None]
        beta = np.linalg.solve(Xw.T @ X + 1e-6 * np.eye(X.shape[1]), Xw.T @ y)
        r = y - X @ beta
        k = 1.345 * (1.4826 * float(np.median(np.abs(r - np.median(r)))) + 1e-9)
        wts = np.where(np.abs(r) <= k, 1.0, k / np.maximum(np.abs(r), 1e-12))
    rows, cols = np.mgrid[0:h, 0:w]
    f = (basis(rows.ravel(), cols.ravel()) @ beta).reshape(h, w)
    return np.clip(f, 0.2, 5.0).astype(np.float32)


def _zmap(pred: np.ndarray, other: np.ndarray, valid: np.ndarray, p: PixelParams,
          rng: np.random.Generator) -> np.ndarray:
    """Largest robust z-score over ``p.sigmas`` of the tolerant residual ``min_{±tol} pred − other``."""
    pred = ndimage.gaussian_filter(pred, 0.5)
    if p.tolerance_px > 0:
        pred = ndimage.minimum_filter(pred, 2 * p.tolerance_px + 1)
    e = (pred - other).astype(np.float32)
    best = None
    for s in p.sigmas:
        es = ndimage.gaussian_filter(e, s) if s > 0 else e
        z = es / np.float32(_mad(es[valid], rng))
        best = z if best is None else np.maximum(best, z)
    assert best is not None
    return best


def pixel_evidence(visible: np.ndarray, other: np.ndarray, *, valid: np.ndarray | None = None,
                   params: PixelParams | None = None, seed: int = 0) -> tuple[np.ndarray, dict[str, Any]]:
    """The ``pixel`` heatmap: per-pixel, multi-scale evidence that ``other`` is darker than the colours predict.

    See the module notes for the five steps (global colour look-up table and lighting field, residual
    registration, local tables on tiles, tolerant multi-scale z-scores, peak emphasis).

    Args:
        visible: ``(H, W, 3)`` colours in ``[0, 1]`` (or uint8).
        other: ``(H, W)`` other view normalised so that hidden content reads dark
            (:func:`artlens.beneath.graphs.normalise_other`).
        valid: ``(H, W)`` bool pixels the other view covers (default all); the fits use only these.
        params: :class:`PixelParams` (default: the shipped values).
        seed: seed of the pixel samples.

    Returns:
        ``(heatmap, info)``: ``heatmap`` ``(H, W)`` float32, higher = more likely hidden content;
        ``info`` holds ``params``, ``shift_px`` (the residual shift removed, ``[dy, dx]``), ``lighting_range``
        (smallest and largest factor of the lighting field divided out of the other view),
        ``global_scale`` (robust standard deviation of the global table's residual, in the other view's
        units), ``tile_px`` and ``tiles_fitted``.

    Shape:
        ``visible (H, W, 3)``, ``other (H, W)`` → ``(H, W)``.

    Units:
        Robust standard deviations of the residual (a z-score, not a probability; compare pixels
        within one image).

    Raises:
        InvalidImageError: mismatched shapes, too few valid pixels.
        InvalidParameterError: bad parameters.

    References:
        Huber, P. J. (1964). Robust estimation of a location parameter. Ann. Math. Statist. 35(1), 73-101.
        Guizar-Sicairos, M., Thurman, S. T. and Fienup, J. R. (2008). Efficient subpixel image
        registration algorithms. Optics Letters 33(2), 156-158.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> rgb = np.kron(rng.random((8, 8, 3)), np.ones((8, 8, 1))).astype(np.float32)  # 64 flat paints
        >>> ir = 0.2 + 0.6 * rgb[..., 0] + 0.01 * rng.standard_normal((64, 64))
        >>> ir[30, 10:50] -= 0.3  # a 1 px dark line the colours do not explain
        >>> heat, info = pixel_evidence(rgb, ir)
        >>> bool(np.median(heat[30, 10:50]) > np.percentile(heat, 99))
        True
    """
    p = params or PixelParams()
    p.check()
    rgb = np.asarray(visible)
    rgb = rgb.astype(np.float32) / 255.0 if rgb.dtype == np.uint8 else rgb.astype(np.float32)
    oth = np.asarray(other, dtype=np.float32)
    if rgb.ndim != 3 or rgb.shape[2] < 3 or rgb.shape[:2] != oth.shape:
        raise InvalidImageError(f"expected (H, W, 3) colours and an (H, W) view, got {rgb.shape} and {oth.shape}")
    rgb = rgb[..., :3]
    valid = np.ones(oth.shape, bool) if valid is None else np.asarray(valid, bool)
    idx = np.flatnonzero(valid.ravel())
    if idx.size < 64:
        raise InvalidImageError("too few valid pixels for the pixel method")
    rng = np.random.default_rng(seed)
    sample = rng.choice(idx, p.max_samples, replace=False) if idx.size > p.max_samples else idx
    flat_rgb = rgb.reshape(-1, 3)
    values, scale = fit_colour_lut(flat_rgb[sample], oth.ravel()[sample], grid=p.grid, smoothness=p.smoothness,
                                   iterations=p.iterations)
    pred = lut_predict(values, rgb, p.grid)
    lighting = [1.0, 1.0]
    if p.illumination_degree > 0:  # alternate: the lighting field given the table, the table given the field
        for _ in range(2):
            light = _fit_illumination(pred, oth, sample, p.illumination_degree, p.iterations)
            values, scale = fit_colour_lut(flat_rgb[sample], oth.ravel()[sample] / light.ravel()[sample],
                                           grid=p.grid, smoothness=p.smoothness, iterations=p.iterations)
            pred = lut_predict(values, rgb, p.grid)
        oth = (oth / light).astype(np.float32)
        lighting = [round(float(light[valid].min()), 4), round(float(light[valid].max()), 4)]
    oth = np.where(valid, oth, pred)  # pixels the other view does not cover are explained by definition

    shift = [0.0, 0.0]
    if p.max_shift_px > 0 and min(oth.shape) >= 32:
        from skimage.registration import phase_cross_correlation

        est, _, _ = phase_cross_correlation(pred, oth, upsample_factor=20, normalization=None)
        if 0.1 <= float(np.abs(est).max()) <= p.max_shift_px:
            shift = [float(v) for v in est]
            oth = ndimage.shift(oth, shift, order=3, mode="nearest").astype(np.float32)

    local, tinfo = _local_correction(rgb, oth - pred, valid, p, rng)
    z = np.maximum(_zmap(pred, oth, valid, p, rng), _zmap(pred + local, oth, valid, p, rng))
    if p.peak > 0:
        z = z - np.float32(p.peak) * (ndimage.maximum_filter(z, 3) - z)
    info = {"params": p.to_dict(), "shift_px": [round(v, 3) for v in shift], "lighting_range": lighting,
            "global_scale": round(scale, 6), **tinfo}
    return z.astype(np.float32), info
