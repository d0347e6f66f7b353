"""Photographic nuisance: the feature directions in which a painting moves when it is photographed otherwise.

The same painting photographed under other light, white balance, yellowed varnish, another lens or
stronger compression gets other backbone features, and two paintings photographed the same way
share that change. Centring on the collection's own mean (:meth:`Verifier.adapt
<artlens.paintings.verify.Verifier.adapt>`) removes what one collection's photographs share; a single
pair of paintings has no collection to centre on, and a pair from a collection photographed unlike
the training one then scores too high (BENCHMARKS.md, issue 21).

Nuisance attribute projection, as channel compensation in speaker verification: render training
images again under random photographic changes (:func:`photograph_again`), take the top ``k`` right
singular vectors of the feature differences (:func:`nuisance_basis`) and remove them from the
centred features (:func:`project_out`) whenever the verifier has no collection to adapt to. Nothing
here reads labels.

Off by default (``train-verifier --nuisance-dims``): on development artists under simulated
photographic changes 8 directions halved the calibration error of unadapted scores, on the held-out
collections they changed nothing (BENCHMARKS.md).

References:
    Solomonoff, Campbell and Boardman, "Advances in channel compensation for SVM speaker
    recognition", ICASSP 2005 (nuisance attribute projection).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from PIL import Image


def photograph_again(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """``image`` as another photographer might have captured the same painting: resolution lost and
    regained, sometimes a blur, contrast and saturation, a gamma curve, a colour cast, an exposure
    offset, sometimes a vignette, and JPEG compression. Every setting is drawn from ``rng``; the
    result is RGB of the same size."""
    from PIL import Image, ImageEnhance, ImageFilter

    im = image.convert("RGB")
    w, h = im.size
    scale = rng.uniform(0.35, 1.0)
    if scale < 0.95:
        small = (max(8, int(w * scale)), max(8, int(h * scale)))
        im = im.resize(small, Image.Resampling.BILINEAR).resize((w, h), Image.Resampling.BILINEAR)
    if rng.random() < 0.5:
        im = im.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.8)))
    im = ImageEnhance.Contrast(im).enhance(rng.uniform(0.65, 1.2))
    im = ImageEnhance.Color(im).enhance(rng.uniform(0.55, 1.3))
    a = np.asarray(im, np.float64) / 255.0
    a = a ** rng.uniform(0.7, 1.5) * rng.uniform(0.78, 1.12, size=3) + rng.uniform(-0.06, 0.06)
    if rng.random() < 0.4:
        yy, xx = np.mgrid[0:h, 0:w]
        r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
        a = a * (1 - rng.uniform(0.1, 0.35) * r2 / 2)[..., None]
    im = Image.fromarray((np.clip(a, 0, 1) * 255).astype(np.uint8))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=int(rng.integers(35, 96)))
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def nuisance_basis(differences: np.ndarray, k: int) -> np.ndarray:
    """``(D, k)`` orthonormal directions that explain most of ``differences`` (``(n, D)`` features of
    re-photographed images minus those of the originals): the top ``k`` right singular vectors, not
    mean-centred, so a change shared by every copy counts. ``k`` 0 gives ``(D, 0)``."""
    d = np.asarray(differences, np.float64)
    if k <= 0:
        return np.zeros((d.shape[1], 0), np.float32)
    k = min(k, *d.shape)
    _, _, vt = np.linalg.svd(d, full_matrices=False)
    return np.ascontiguousarray(vt[:k].T, dtype=np.float32)


def project_out(x: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """``x`` (``(n, D)``, centred) without its components along ``basis`` (``(D, k)``, orthonormal)."""
    if basis.shape[1] == 0:
        return x
    return x - (x @ basis) @ basis.T
