"""Register a second image of a painting (infrared, X-ray, a spectral band) onto a first one.

Images of one painting in different modalities differ in intensity, even in polarity (a drawing dark
in IR may be bright in an X-ray), so everything is compared on *gradient magnitudes*, which keep the
edges that the images share whatever their grey levels.

:func:`register` proceeds as follows (``method="auto"``):

1. *Already aligned?* Same shape, phase-correlation shift of the gradient images below 0.5 px and
   their normalised cross-correlation (NCC) high: nothing to do, the moving image is returned as is
   (with a notice).
2. *Features*: ORB keypoints and binary descriptors on gradient-magnitude images (then on
   CLAHE-equalised images when that gives too few matches), cross-checked matching and RANSAC
   fitting of a similarity (or affine) transform.
3. *Intensity only*, when features fail (too few RANSAC inliers, or an estimate that fails the
   check below): a search over scale and rotation in which each candidate's translation comes from
   phase correlation, then Powell optimisation of the gradient NCC over the transform's parameters.
4. *Refinement and check*: the image is divided into tiles; the local shift of each tile that
   correlates is measured by (Hann-windowed, 1/20 px) phase correlation of the gradient images, and a
   correction transform is fitted to those shifts (robust least squares, a few iterations). The
   residual misalignment is then measured afresh on the final warp: the median tile shift. A
   registration whose residual exceeds ``max_residual_px``, whose tiles mostly do not correlate, or
   whose images do not correlate as a whole raises :class:`~artlens.errors.InvalidParameterError`
   with advice: never a silent garbage warp. Within one modality the residual matches the true
   error (synthetic similarity warps: residual and true error both under 0.1 px). Across modalities
   (visible vs IR) the tile shifts carry a content-dependent bias (structures seen in one image
   only) that the residual cannot see, and scale/rotation errors grow towards the corners: on
   synthetic visible/IR pairs of 192-256 px the residual was 0.1-0.4 px while the largest true error
   over the image was 0.1-0.9 px, once 2.3 px. Read it as a lower bound there.
5. Optionally (``nonrigid=True``) a TV-L1 optical flow between the gradient images after the global
   transform; its displacement statistics are reported and the flow is applied to ``warped``.

Coordinates: transforms are ``3 x 3`` homogeneous matrices acting on pixel coordinates ``(x, y) =
(column, row)`` with pixel centres at integers, mapping *moving* to *fixed* coordinates (the
scikit-image convention).

References:
    Rublee, E., Rabaud, V., Konolige, K. and Bradski, G. (2011). ORB: an efficient alternative to
    SIFT or SURF. ICCV, 2564-2571.
    Fischler, M. A. and Bolles, R. C. (1981). Random sample consensus. Comm. ACM 24(6), 381-395.
    Kuglin, C. D. and Hines, D. C. (1975). The phase correlation image alignment method. Proc. IEEE
    Conf. on Cybernetics and Society, 163-165.
    Guizar-Sicairos, M., Thurman, S. T. and Fienup, J. R. (2008). Efficient subpixel image
    registration algorithms. Optics Letters 33(2), 156-158.
    Zach, C., Pock, T. and Bischof, H. (2007). A duality based approach for realtime TV-L1 optical
    flow. DAGM, LNCS 4713, 214-223.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage, optimize

from artlens.errors import InvalidImageError, InvalidParameterError

METHODS = ("auto", "feature", "intensity", "none")
MODELS = ("similarity", "affine")
MIN_SIDE = 32
"""Smallest image side (pixels) that can be registered."""

ALIGNED_SHIFT_PX = 0.5
ALIGNED_NCC = 0.3
MIN_INLIERS = 12
MIN_NCC = 0.15
TILE_NCC = 0.2
"""A tile counts in the residual when its gradient NCC, once shifted, reaches this (0.3 for tiles under 64 px)."""
MIN_TILE_FRACTION = 0.15
_FEATURE_SIDE = 512  # features are found on images shrunk to at most this side
_SEARCH_SIDE = 192  # the intensity search and optimisation work at most at this side
_GOOD_INLIERS = 40


@dataclass
class RegistrationResult:
    """What :func:`register` found.

    Attributes:
        warped: ``(H, W)`` ``float32`` moving image resampled onto the fixed grid (0 outside it).
        transform: ``3 x 3`` matrix mapping moving ``(x, y)`` to fixed ``(x, y)`` pixel coordinates.
        method_used: ``"none"``, ``"feature"`` or ``"intensity"``.
        residual_px: estimated residual misalignment (fixed pixels): the median shift, measured after
            the final warp, of gradient tiles of the fixed and warped images (resolution 0.05 px; ``nan``
            when it cannot be measured). For skipped pairs: the global phase-correlation shift. It sees
            local misalignment only where tiles correlate, and across modalities not the bias of
            structures present in one image only (see the module notes).
        skipped: the images were already aligned (or ``method="none"``) and nothing was estimated.
        notes: what was done, in order.
        valid: ``(H, W)`` bool, where ``warped`` holds moving pixels.
        ncc: normalised cross-correlation of the gradient magnitudes after registration (over ``valid``).
        inliers: RANSAC inliers of the feature estimate, ``None`` for other methods.
        inlier_residual_px: median distance (fixed pixels) of the inlier matches under the final
            transform, ``None`` for other methods.
        tiles_used: number of tiles behind ``residual_px``.
        flow_stats: displacement statistics (px) of the non-rigid step, ``None`` without it.
        flow: ``(2, H, W)`` (row, column) displacement of the non-rigid step, ``None`` without it.
    """

    warped: np.ndarray
    transform: np.ndarray
    method_used: str
    residual_px: float
    skipped: bool
    notes: list[str] = field(default_factory=list)
    valid: np.ndarray | None = None
    ncc: float | None = None
    inliers: int | None = None
    inlier_residual_px: float | None = None
    tiles_used: int = 0
    flow_stats: dict[str, float] | None = None
    flow: np.ndarray | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (no pixel arrays)."""
        def num(v: float | None) -> float | None:
            return None if v is None or not np.isfinite(v) else round(float(v), 4)

        params = _decompose(self.transform)
        return {
            "method_used": self.method_used,
            "skipped": self.skipped,
            "residual_px": num(self.residual_px),
            "transform": [[round(float(v), 8) for v in row] for row in self.transform],
            "scale": num(params["scale"]),
            "rotation_deg": num(params["rotation_deg"]),
            "translation_px": [num(params["tx"]), num(params["ty"])],
            "ncc": num(self.ncc),
            "inliers": self.inliers,
            "inlier_residual_px": num(self.inlier_residual_px),
            "tiles_used": self.tiles_used,
            "nonrigid": None if self.flow_stats is None else {k: num(v) for k, v in self.flow_stats.items()},
            "shape": list(self.warped.shape),
            "notes": list(self.notes),
        }


# -- small helpers ------------------------------------------------------------------------------------
def _prep(img: Any, name: str) -> np.ndarray:
    arr = np.asarray(img)
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        raise InvalidImageError(f"{name} image is colour {arr.shape}; pass one grey band (e.g. its luminance)")
    if arr.ndim != 2:
        raise InvalidImageError(f"{name} image must be 2-D (H, W), got shape {arr.shape}")
    if min(arr.shape) < MIN_SIDE:
        raise InvalidImageError(f"{name} image is {arr.shape[0]}x{arr.shape[1]}; registration needs at least "
                                f"{MIN_SIDE}x{MIN_SIDE} pixels")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise InvalidImageError(f"{name} image contains NaN or infinite values")
    lo, hi = np.percentile(arr, [0.5, 99.5])
    if hi - lo <= 1e-12:
        lo, hi = arr.min(), arr.max()
    if hi - lo <= 1e-12:
        raise InvalidImageError(f"{name} image is flat (a single grey level); nothing to register")
    return np.clip((arr - lo) / (hi - lo), 0.0, 1.0)


def _gradient(img: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """Gradient magnitude of a Gaussian-smoothed image, scaled so its 99th percentile is 1."""
    sm = ndimage.gaussian_filter(img, sigma) if sigma > 0 else img
    g = np.hypot(ndimage.sobel(sm, axis=0), ndimage.sobel(sm, axis=1))
    p = np.percentile(g, 99)
    return np.clip(g / p, 0.0, 1.0) if p > 0 else g


def _ncc(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    if mask is not None:
        a, b = a[mask], b[mask]
    if a.size < 16:
        return 0.0
    a = a - a.mean()
    b = b - b.mean()
    den = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else 0.0


def _shrink(img: np.ndarray, max_side: int) -> tuple[np.ndarray, np.ndarray]:
    """``img`` shrunk so its longer side is at most ``max_side``, and the 3x3 matrix mapping full-size
    ``(x, y)`` to shrunk ``(x, y)``."""
    h, w = img.shape
    f = max(h, w) / max_side
    if f <= 1.0:
        return img, np.eye(3)
    from skimage.transform import resize

    nh, nw = max(MIN_SIDE // 2, round(h / f)), max(MIN_SIDE // 2, round(w / f))
    small = resize(img, (nh, nw), order=1, anti_aliasing=True, preserve_range=True)
    return small, _scale_matrix(nw / w, nh / h)


def _scale_matrix(sx: float, sy: float) -> np.ndarray:
    """Maps ``(x, y)`` of a grid to a resampled grid ``sx, sy`` times as large (pixel centres aligned)."""
    return np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])


def _similarity(tx: float, ty: float, log_s: float, theta: float, centre: tuple[float, float]) -> np.ndarray:
    """Rotation by ``theta`` (radians) and scaling by ``exp(log_s)`` about ``centre``, then a shift."""
    s = math.exp(log_s)
    c, si = s * math.cos(theta), s * math.sin(theta)
    cx, cy = centre
    return np.array([[c, -si, cx - c * cx + si * cy + tx], [si, c, cy - si * cx - c * cy + ty], [0.0, 0.0, 1.0]])


def _affine_delta(p: np.ndarray, centre: tuple[float, float]) -> np.ndarray:
    """Affine perturbation about ``centre``: ``p = (tx, ty, a11-1, a12, a21, a22-1)``."""
    cx, cy = centre
    A = np.array([[1.0 + p[2], p[3]], [p[4], 1.0 + p[5]]])
    t = np.array([p[0], p[1]]) + np.array([cx, cy]) - A @ np.array([cx, cy])
    return np.array([[A[0, 0], A[0, 1], t[0]], [A[1, 0], A[1, 1], t[1]], [0.0, 0.0, 1.0]])


def _decompose(T: np.ndarray) -> dict[str, float]:
    a, b = T[0, 0], T[1, 0]
    return {"scale": math.sqrt(abs(np.linalg.det(T[:2, :2]))), "rotation_deg": math.degrees(math.atan2(b, a)),
            "tx": float(T[0, 2]), "ty": float(T[1, 2])}


def _warp(img: np.ndarray, T: np.ndarray, shape: tuple[int, int], order: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``img`` (moving) resampled on a grid of ``shape`` (fixed) through ``T`` (fixed <- moving), and the
    mask of output pixels that fall inside ``img``. Shrinking warps are pre-smoothed (anti-aliasing)."""
    scale = math.sqrt(abs(np.linalg.det(T[:2, :2])))
    src = ndimage.gaussian_filter(img, 0.5 * (1.0 / scale - 1.0)) if scale < 0.7 else img
    Ti = np.linalg.inv(T)
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    x = Ti[0, 0] * cols + Ti[0, 1] * rows + Ti[0, 2]
    y = Ti[1, 0] * cols + Ti[1, 1] * rows + Ti[1, 2]
    out = ndimage.map_coordinates(src, [y, x], order=order, mode="constant", cval=0.0)
    h, w = img.shape
    # only pixels interpolated from moving samples alone: between the outer pixel centres (a pixel
    # beyond them is blended with the zero fill and reads falsely dark)
    eps = 1e-6
    valid = (x >= -eps) & (x <= w - 1 + eps) & (y >= -eps) & (y <= h - 1 + eps)
    return out, valid


def _valid_model(tform: Any, *_: Any) -> bool:
    """RANSAC hook: reject failed estimations and implausible transforms."""
    try:
        return bool(tform) and _plausible(np.asarray(tform.params))
    except (AttributeError, TypeError, ValueError, np.linalg.LinAlgError):
        return False


def _fit(model: str, src: np.ndarray, dst: np.ndarray) -> Any:
    """A skimage transform fitted to point pairs (from_estimate on new scikit-image, estimate before)."""
    from skimage.transform import AffineTransform, SimilarityTransform

    cls = SimilarityTransform if model == "similarity" else AffineTransform
    if hasattr(cls, "from_estimate"):
        t = cls.from_estimate(src, dst)
        return t if t else None
    t = cls()
    return t if t.estimate(src, dst) else None


def _plausible(T: np.ndarray) -> bool:
    """Scale 1/8..8, no reflection, shear and anisotropy below a factor 2."""
    A = T[:2, :2]
    det = np.linalg.det(A)
    if not np.isfinite(A).all() or det <= 0:
        return False
    sv = np.linalg.svd(A, compute_uv=False)
    return 1 / 8 <= math.sqrt(det) <= 8 and sv[0] / sv[1] < 2.0


# -- the steps ------------------------------------------------------------------------------------------
def _phase_shift(a: np.ndarray, b: np.ndarray, upsample: int = 10) -> np.ndarray:
    """Shift (row, col) that moves ``b`` onto ``a`` by phase correlation. Both are mean-subtracted and
    Hann-windowed first: otherwise the frame they share (the same crop) pulls the estimate towards 0."""
    from skimage.filters import window
    from skimage.registration import phase_cross_correlation

    win = window("hann", a.shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        shift, _, _ = phase_cross_correlation((a - a.mean()) * win, (b - b.mean()) * win, upsample_factor=upsample)
    return np.asarray(shift, dtype=np.float64)


def _orb_matches(F: np.ndarray, M: np.ndarray, model: str, rng: np.random.Generator
                 ) -> tuple[np.ndarray | None, int, np.ndarray, np.ndarray, str]:
    """Best ORB + RANSAC estimate over a few image representations: ``(T or None, inliers, src, dst, repr)``
    with ``T`` in full-size coordinates and ``src``/``dst`` the inlier keypoints (full-size moving / fixed)."""
    from skimage.exposure import equalize_adapthist
    from skimage.feature import ORB, match_descriptors
    from skimage.measure import ransac
    from skimage.transform import AffineTransform, SimilarityTransform

    Fs, DF = _shrink(F, _FEATURE_SIDE)
    Ms, DM = _shrink(M, _FEATURE_SIDE)
    reps = {
        "gradient": (lambda a: _gradient(a, 1.0), lambda a: _gradient(a, 1.0)),
        "clahe": (equalize_adapthist, equalize_adapthist),
    }
    cls = SimilarityTransform if model == "similarity" else AffineTransform
    best: tuple[np.ndarray | None, int, np.ndarray, np.ndarray, str] = (None, 0, np.empty((0, 2)), np.empty((0, 2)), "")
    for name, (pf, pm) in reps.items():
        kps, descs = [], []
        for img, prep in ((Fs, pf), (Ms, pm)):
            orb = ORB(n_keypoints=800, fast_threshold=0.05)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    orb.detect_and_extract(prep(img))
            except (RuntimeError, ValueError, IndexError):
                break
            if len(orb.keypoints) < MIN_INLIERS:
                break
            kps.append(orb.keypoints[:, ::-1].astype(np.float64))  # (row, col) -> (x, y)
            descs.append(orb.descriptors)
        if len(kps) < 2:
            continue
        matches = match_descriptors(descs[0], descs[1], cross_check=True, max_ratio=0.9)
        if len(matches) < MIN_INLIERS:
            continue
        dst, src = kps[0][matches[:, 0]], kps[1][matches[:, 1]]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tform, inl = ransac((src, dst), cls, min_samples=3, residual_threshold=1.5, max_trials=2000,
                                rng=rng, is_model_valid=_valid_model)
        if tform is None or inl is None:
            continue
        n = int(inl.sum())
        if n > best[1] and n >= 3:
            T = np.linalg.inv(DF) @ np.asarray(tform.params) @ DM
            src_full = (np.linalg.inv(DM) @ np.c_[src[inl], np.ones(n)].T).T[:, :2]
            dst_full = (np.linalg.inv(DF) @ np.c_[dst[inl], np.ones(n)].T).T[:, :2]
            best = (T, n, src_full, dst_full, name)
        if best[1] >= _GOOD_INLIERS:
            break
    return best


def _search_intensity(gF: np.ndarray, gM: np.ndarray, model: str, guesses: list[float]) -> tuple[np.ndarray, float]:
    """Coarse-to-fine intensity registration of gradient images (already at working size):
    scale x rotation grid with phase-correlation translations, then Powell on NCC."""
    h, w = gF.shape
    cF = ((w - 1) / 2.0, (h - 1) / 2.0)
    cM = ((gM.shape[1] - 1) / 2.0, (gM.shape[0] - 1) / 2.0)
    sF = ndimage.gaussian_filter(gF, 1.0)
    sM = ndimage.gaussian_filter(gM, 1.0)
    best_T, best_score = np.eye(3), -np.inf
    for s0 in guesses:
        for s in s0 * np.exp(np.linspace(math.log(0.85), math.log(1.18), 7)):
            for deg in (-6.0, -3.0, 0.0, 3.0, 6.0):
                # moving centre onto fixed centre, rotated and scaled about it
                T = _similarity(cF[0] - cM[0], cF[1] - cM[1], 0.0, 0.0, (0.0, 0.0))
                T = _similarity(0.0, 0.0, math.log(s), math.radians(deg), cF) @ T
                warped, valid = _warp(sM, T, gF.shape)
                shift = _phase_shift(sF, warped, upsample=1)
                T2 = _similarity(shift[1], shift[0], 0.0, 0.0, cF) @ T
                warped, valid = _warp(sM, T2, gF.shape)
                if valid.mean() < 0.25:
                    continue
                score = _ncc(sF, warped, valid)
                if score > best_score:
                    best_T, best_score = T2, score
    return _optimise_ncc(sF, sM, best_T, model), best_score


def _optimise_ncc(sF: np.ndarray, sM: np.ndarray, T0: np.ndarray, model: str) -> np.ndarray:
    """Maximise the NCC of gradient images over similarity (4) or affine (6) parameters (Powell)."""
    h, w = sF.shape
    centre = ((w - 1) / 2.0, (h - 1) / 2.0)

    def delta(p: np.ndarray) -> np.ndarray:
        if model == "similarity":
            return _similarity(p[0], p[1], p[2] / 100.0, p[3] / 100.0, centre)
        return _affine_delta(np.r_[p[:2], p[2:] / 100.0], centre)

    def cost(p: np.ndarray) -> float:
        warped, valid = _warp(sM, delta(p) @ T0, sF.shape)
        if valid.mean() < 0.25:
            return 1.0
        return -_ncc(sF, warped, valid)

    n = 4 if model == "similarity" else 6
    res = optimize.minimize(cost, np.zeros(n), method="Powell",
                            options={"xtol": 1e-2, "ftol": 1e-5, "maxfev": 40 * n})
    p = res.x if res.fun <= cost(np.zeros(n)) else np.zeros(n)
    return delta(p) @ T0


def _tiles(gF: np.ndarray, gW: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Local shifts between gradient images, by phase correlation (1/20 px) of tiles that lie inside
    ``valid``, hold structure and correlate (NCC >= :data:`TILE_NCC` once shifted).

    Returns ``(centres, shifts, candidates)``: ``(n, 2)`` tile centres ``(x, y)``, ``(n, 2)`` shifts
    ``(dx, dy)`` that carry the warped image onto the fixed one, and the number of tiles tried.
    """
    h, w = gF.shape
    tile = int(np.clip(min(h, w) // 4, 32, 128))
    step_y = max(tile // 2, (h - tile) // 8 or 1)
    step_x = max(tile // 2, (w - tile) // 8 or 1)
    centres, shifts = [], []
    candidates = 0
    inner = slice(4, tile - 4)
    gate = TILE_NCC if tile >= 64 else TILE_NCC + 0.1  # small tiles correlate more by chance
    for y in range(0, h - tile + 1, step_y):
        for x in range(0, w - tile + 1, step_x):
            if not valid[y : y + tile, x : x + tile].all():
                continue
            a, b = gF[y : y + tile, x : x + tile], gW[y : y + tile, x : x + tile]
            if a.std() < 0.02 or b.std() < 0.02:
                continue
            candidates += 1
            shift = _phase_shift(a, b, upsample=20)
            if np.hypot(*shift) > tile / 4:
                continue
            moved = ndimage.shift(b, shift, order=1, mode="nearest")
            if _ncc(a[inner, inner], moved[inner, inner]) >= gate:
                centres.append((x + (tile - 1) / 2.0, y + (tile - 1) / 2.0))
                shifts.append((shift[1], shift[0]))
    return np.array(centres).reshape(-1, 2), np.array(shifts).reshape(-1, 2), candidates


def _refine_tiles(M: np.ndarray, gF: np.ndarray, T: np.ndarray, model: str, iterations: int = 4
                  ) -> tuple[np.ndarray, float]:
    """Refine ``T`` by fitting a correction to the local tile shifts at full resolution (robust least
    squares: tiles off by more than 3 MAD are dropped). Returns the transform and the largest
    correction applied at a tile centre (px)."""
    moved = 0.0
    for _ in range(iterations):
        warped, valid = _warp(M, T, gF.shape)
        pts, d, _ = _tiles(gF, _gradient(warped), valid)
        if len(pts) < (4 if model == "similarity" else 6):
            break
        keep = np.ones(len(pts), bool)
        C = None
        for _ in range(2):
            tf = _fit(model, pts[keep], pts[keep] + d[keep])
            if tf is None:
                break
            C = np.asarray(tf.params)
            err = np.hypot(*((C @ np.c_[pts, np.ones(len(pts))].T).T[:, :2] - pts - d).T)
            mad = np.median(np.abs(err - np.median(err))) + 0.05
            keep = err <= np.median(err) + 3 * mad
            if keep.sum() < (4 if model == "similarity" else 6):
                break
        if C is None or not _plausible(C):
            break
        step = float(np.max(np.hypot(*((C @ np.c_[pts, np.ones(len(pts))].T).T[:, :2] - pts).T)))
        T = C @ T
        moved = max(moved, step)
        if step < 0.05:
            break
    return T, moved


def _flow(gF: np.ndarray, gW: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
    from skimage.registration import optical_flow_tvl1

    v, u = optical_flow_tvl1(gF.astype(np.float32), gW.astype(np.float32))
    mag = np.hypot(v, u)[valid]
    stats = {"median_px": float(np.median(mag)), "p95_px": float(np.percentile(mag, 95)),
             "max_px": float(mag.max()), "mean_px": float(mag.mean())}
    return np.stack([v, u]), stats


# -- public API ----------------------------------------------------------------------------------------------
def register(
    fixed: np.ndarray,
    moving: np.ndarray,
    *,
    method: str = "auto",
    nonrigid: bool = False,
    model: str = "similarity",
    max_residual_px: float = 2.0,
    seed: int = 0,
) -> RegistrationResult:
    """Register ``moving`` onto ``fixed``: find the transform and resample ``moving`` on ``fixed``'s grid.

    Args:
        fixed: ``(H, W)`` grey image (any real dtype; e.g. the visible luminance).
        moving: ``(h, w)`` grey image of the same painting (IR, X-ray, a band), any size.
        method: ``"auto"`` (skip when already aligned, else features, falling back to intensity),
            ``"feature"`` (features only; fails rather than falls back), ``"intensity"`` (phase
            correlation + scale/rotation search + NCC optimisation) or ``"none"`` (no estimation;
            ``moving`` is only resized to ``fixed``'s shape when they differ, assuming the same field
            of view).
        nonrigid: after the global transform, estimate a TV-L1 optical flow between the gradient images,
            report its statistics and apply it to ``warped``.
        model: ``"similarity"`` (rotation, uniform scale, shift) or ``"affine"``.
        max_residual_px: largest acceptable residual (fixed pixels) before the registration is declared
            failed.
        seed: seed of RANSAC's random sampling (results are deterministic for a given seed).

    Returns:
        A :class:`RegistrationResult`.

    Raises:
        InvalidImageError: images not 2-D, colour, smaller than 32x32, non-finite or flat.
        InvalidParameterError: unknown method/model; or a failed registration (residual above
            ``max_residual_px``, images that do not correlate, an implausible transform), with advice.

    Units:
        Pixels of ``fixed``; ``transform`` maps moving ``(x, y) = (column, row)`` to fixed ``(x, y)``.

    References:
        Rublee et al. (2011) ORB; Fischler and Bolles (1981) RANSAC; Guizar-Sicairos et al. (2008)
        sub-pixel phase correlation; Zach et al. (2007) TV-L1 optical flow.

    Example:
        >>> result = register(visible_luminance, ir_image)  # doctest: +SKIP
        >>> result.method_used, round(result.residual_px, 2)  # doctest: +SKIP
        ('feature', 0.18)
    """
    if method not in METHODS:
        raise InvalidParameterError(f"unknown registration method {method!r}; expected one of {', '.join(METHODS)}")
    if model not in MODELS:
        raise InvalidParameterError(f"unknown transform model {model!r}; expected one of {', '.join(MODELS)}")
    if not (np.isfinite(max_residual_px) and max_residual_px > 0):
        raise InvalidParameterError(f"max_residual_px must be a positive number, got {max_residual_px}")
    F = _prep(fixed, "fixed")
    M = _prep(moving, "moving")
    moving_raw = np.asarray(moving, dtype=np.float64)
    gF = _gradient(F)
    notes: list[str] = []
    same_shape = F.shape == M.shape

    if method == "none" or (method == "auto" and same_shape):
        if same_shape:
            T0 = np.eye(3)
        else:
            T0 = _scale_matrix(F.shape[1] / M.shape[1], F.shape[0] / M.shape[0])
            notes.append(f"moving image {M.shape[1]}x{M.shape[0]} resized to {F.shape[1]}x{F.shape[0]} "
                         "(same field of view assumed)")
        warped_n, valid = _warp(M, T0, F.shape) if not same_shape else (M, np.ones(F.shape, bool))
        gW = _gradient(warped_n)
        shift = _phase_shift(gF, gW, upsample=20)
        shift_px = float(np.hypot(*shift))
        ncc = _ncc(gF, gW, valid)
        if method == "none" or (shift_px < ALIGNED_SHIFT_PX and ncc >= ALIGNED_NCC):
            if method == "auto":
                msg = (f"images already aligned (phase-correlation shift {shift_px:.2f} px, gradient NCC "
                       f"{ncc:.2f}); registration skipped")
                warnings.warn(msg, UserWarning, stacklevel=2)
            else:
                msg = f"method 'none': not registered (measured global shift {shift_px:.2f} px)"
            notes.append(msg)
            warped = moving_raw if same_shape else _warp(moving_raw, T0, F.shape)[0]
            return RegistrationResult(warped.astype(np.float32), T0, "none", shift_px, True, notes, valid, ncc)

    if method in ("auto", "feature"):
        rng = np.random.default_rng(seed)
        Tf, n, src, dst, rep = _orb_matches(F, M, model, rng)
        if Tf is not None and n >= MIN_INLIERS and _plausible(Tf):
            feature_notes = [f"ORB features on {rep} images: {n} RANSAC inliers ({model})"]
            try:
                return _finish(F, M, gF, moving_raw, Tf, "feature", model, max_residual_px, nonrigid,
                               notes + feature_notes, inliers=n, src=src, dst=dst, other="intensity")
            except InvalidParameterError as exc:
                if method == "feature":
                    raise
                notes.extend(feature_notes)
                notes.append(f"feature estimate rejected ({exc}); trying intensity-only registration")
        else:
            reason = f"only {n} RANSAC inliers (need {MIN_INLIERS})"
            if method == "feature":
                raise InvalidParameterError(
                    f"feature registration failed: {reason}; try method='intensity', or check that both images "
                    "show the same painting"
                )
            notes.append(f"feature matching failed ({reason}); fell back to intensity-only registration")

    Fs, DF = _shrink(F, _SEARCH_SIDE)
    # the moving image goes to the working scale of the fixed one; scales are searched around two
    # guesses: the same field of view, and the same pixel size
    fov = float(np.mean([F.shape[0] / M.shape[0], F.shape[1] / M.shape[1]]))
    Ms, DM = _shrink(M, max(MIN_SIDE, round(max(M.shape) * DF[0, 0] * max(1.0, fov))))
    guesses = sorted({round(fov * DF[0, 0] / DM[0, 0], 3), round(DF[0, 0] / DM[0, 0], 3)})
    Tw, _ = _search_intensity(_gradient(Fs), _gradient(Ms), model, guesses)
    T = np.linalg.inv(DF) @ Tw @ DM
    notes.append("intensity registration: scale/rotation search with phase correlation, then NCC "
                 f"optimisation of gradient magnitudes ({model})")
    return _finish(F, M, gF, moving_raw, T, "intensity", model, max_residual_px, nonrigid, notes,
                   other="feature" if method == "intensity" else None)


def _finish(F: np.ndarray, M: np.ndarray, gF: np.ndarray, moving_raw: np.ndarray, T: np.ndarray, method_used: str,
            model: str, max_residual_px: float, nonrigid: bool, notes: list[str], *, inliers: int | None = None,
            src: np.ndarray | None = None, dst: np.ndarray | None = None, other: str | None = None
            ) -> RegistrationResult:
    """Refine ``T`` on gradient tiles, check it, measure the residual, warp (and optionally flow)."""
    notes = list(notes)
    if _plausible(T):
        T, step = _refine_tiles(M, gF, T, model)
        if step > 0:
            notes.append(f"refined on local phase-correlation shifts of gradient tiles (largest correction "
                         f"{step:.2f} px)")
    advice = f"try method='{other}', " if other else ""
    if not _plausible(T):
        raise InvalidParameterError(
            f"registration failed ({method_used}): implausible transform (scale {_decompose(T)['scale']:.3g}); "
            f"check that both images show the same painting, {advice}or crop them to a common area"
        )
    warped_n, valid = _warp(M, T, F.shape)
    if valid.mean() < 0.2:
        raise InvalidParameterError(
            f"registration failed ({method_used}): the moving image covers only {100 * valid.mean():.0f}% of the "
            f"fixed one; {advice}or crop both to the common area"
        )
    gW = _gradient(warped_n)
    ncc = _ncc(gF, gW, valid)
    pts, d, candidates = _tiles(gF, gW, valid)
    used = len(pts)
    residual = float(np.median(np.hypot(d[:, 0], d[:, 1]))) if used else float("nan")
    inlier_res = None
    if inliers is not None and src is not None and dst is not None:
        pred = (T @ np.c_[src, np.ones(len(src))].T).T[:, :2]
        inlier_res = float(np.median(np.hypot(*(pred - dst).T)))
    need_tiles = max(3, math.ceil(MIN_TILE_FRACTION * candidates))
    correlated = ncc >= MIN_NCC and used >= need_tiles and np.isfinite(residual)
    if not correlated:
        raise InvalidParameterError(
            f"registration failed ({method_used}: only {used} of {candidates} image tiles correlate after warping, "
            f"gradient NCC {ncc:.2f}); the images may not show the same painting or overlap too little: "
            f"{advice}check the pair, or crop both to the common area"
        )
    if residual > max_residual_px:
        raise InvalidParameterError(
            f"registration failed ({method_used}: residual {residual:.2f} px > {max_residual_px:g} px over {used} "
            f"tiles); the images may be distorted differently: {advice}try model='affine', crop both "
            "to the common area, or raise max_residual_px"
        )
    notes.append(f"residual {residual:.2f} px (median shift of {used} gradient tiles after warping)")
    warped, _ = _warp(moving_raw, T, F.shape)
    result = RegistrationResult(warped.astype(np.float32), T, method_used, residual, False, notes, valid, ncc,
                                inliers, inlier_res, used)
    if nonrigid:
        flow, stats = _flow(gF, gW, valid)
        rows, cols = np.mgrid[0 : F.shape[0], 0 : F.shape[1]].astype(np.float64)
        result.warped = ndimage.map_coordinates(warped, [rows + flow[0], cols + flow[1]], order=1,
                                                mode="nearest").astype(np.float32)
        result.flow, result.flow_stats = flow.astype(np.float32), stats
        notes.append(f"non-rigid TV-L1 flow applied: median {stats['median_px']:.2f} px, "
                     f"95th percentile {stats['p95_px']:.2f} px, max {stats['max_px']:.2f} px")
    return result
