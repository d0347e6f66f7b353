"""Registry of image embedders, and a training-free colour-and-texture embedder.

Every part that turns images into vectors (the search index, collection maps) chooses its
:class:`~artlens.paintings.embedding.Embedder` by name::

    >>> from artlens.paintings.embedders import create_embedder, list_embedders
    >>> "colour-histogram" in list_embedders()
    True
    >>> emb = create_embedder("colour-histogram")
    >>> emb.dim
    136

Factories register themselves with :func:`register_embedder`; the CNN embedders of
:mod:`artlens.paintings.features` (``"lite0"``, ...) do so when that module is imported, which
:func:`create_embedder` and :func:`list_embedders` do lazily, so that asking for the colour histogram
never imports torch. An index records its embedder's name and config (``index.json``);
:func:`embedder_from_record` rebuilds the same embedder from that record to embed queries.
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from PIL import Image

from artlens.errors import ArtlensError, InvalidParameterError
from artlens.paintings.embedding import EmbedBatch, Embedder, l2_normalise
from artlens.paintings.images import load_rgb

__all__ = [
    "ColourHistogramEmbedder",
    "create_embedder",
    "embedder_from_record",
    "embedder_record",
    "list_embedders",
    "register_embedder",
    "same_embedder",
]

EmbedderFactory = Callable[..., Embedder]

_REGISTRY: dict[str, EmbedderFactory] = {}
_PLUGIN_MODULES = ("artlens.paintings.features", "artlens.paintings.encoders")
_plugin_errors: dict[str, str] = {}
_plugins_loaded = False


def register_embedder(name: str) -> Callable[[EmbedderFactory], EmbedderFactory]:
    """Decorator registering an embedder factory under ``name``.

    The factory is called as ``factory(**config)`` and must return an object following the
    :class:`~artlens.paintings.embedding.Embedder` protocol whose ``config`` can be passed back to the
    factory to rebuild the same embedder. Registering a name again replaces the earlier factory (so
    that reloading a module is harmless).

    Args:
        name: the name users pass (``--embedder NAME``); lower-case, no spaces.

    Returns:
        The decorator, which returns the factory unchanged.

    Raises:
        InvalidParameterError: empty name or a name with whitespace.

    Example:
        >>> @register_embedder("my-embedder")  # doctest: +SKIP
        ... def my_embedder(**config):
        ...     return MyEmbedder(**config)
    """
    if not name or any(c.isspace() for c in name):
        raise InvalidParameterError(f"embedder name {name!r}: must be non-empty and without spaces")

    def decorate(factory: EmbedderFactory) -> EmbedderFactory:
        _REGISTRY[name] = factory
        return factory

    return decorate


def _load_plugins() -> None:
    """Import the modules that register more embedders (once); a missing module is not an error."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    import importlib

    for module in _PLUGIN_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:  # the module exists but one of its dependencies is missing
                _plugin_errors[module] = f"{type(exc).__name__}: {exc}"
        except ImportError as exc:
            _plugin_errors[module] = f"{type(exc).__name__}: {exc}"


def list_embedders(pattern: str | None = None) -> list[str]:
    """Names of the registered embedders, sorted; ``pattern`` filters them with shell wildcards."""
    _load_plugins()
    names = sorted(_REGISTRY)
    if pattern:
        names = [n for n in names if fnmatch.fnmatch(n, pattern)]
    return names


def create_embedder(name: str, **config: Any) -> Embedder:
    """Build a registered embedder.

    Args:
        name: registered name (see :func:`list_embedders`).
        **config: settings passed to the factory (an embedder's own ``config`` is accepted back).

    Returns:
        The embedder.

    Raises:
        InvalidParameterError: unknown name (the message lists the known ones) or settings the
            factory does not accept.
    """
    if name not in _REGISTRY:
        _load_plugins()
    if name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        why = "".join(f"; {m} could not be imported ({e})" for m, e in _plugin_errors.items())
        raise InvalidParameterError(f"unknown embedder {name!r} (known: {known}){why}")
    try:
        return _REGISTRY[name](**config)
    except TypeError as exc:
        raise InvalidParameterError(f"embedder {name!r}: bad settings {sorted(config)} ({exc})") from None


def embedder_record(embedder: Embedder) -> dict[str, Any]:
    """The JSON-ready identity of an embedder: ``{"name", "config", "checksum", "dim"}``."""
    return {
        "name": embedder.name,
        "config": json.loads(json.dumps(embedder.config, default=str)),
        "checksum": embedder.checksum,
        "dim": int(embedder.dim),
    }


def same_embedder(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """True when two :func:`embedder_record` dicts describe embedders that give the same vectors."""
    def key(r: dict[str, Any]) -> str:
        return json.dumps({k: r.get(k) for k in ("name", "config", "checksum", "dim")}, sort_keys=True, default=str)

    return key(a) == key(b)


def embedder_from_record(record: dict[str, Any]) -> Embedder:
    """Rebuild the embedder described by an index record.

    Args:
        record: either an :func:`embedder_record` dict or a whole ``index.json`` record holding one
            under ``"embedder"``.

    Returns:
        An embedder with the same name and config.

    Raises:
        InvalidParameterError: the embedder is not registered here, or it now uses different weights
            (another checksum) or another vector length, so its vectors would not match the index.
    """
    rec = record.get("embedder", record)
    if not isinstance(rec, dict) or not isinstance(rec.get("name"), str):
        raise InvalidParameterError("the index record names no embedder")
    emb = create_embedder(rec["name"], **dict(rec.get("config") or {}))
    if rec.get("checksum") != emb.checksum:
        raise InvalidParameterError(
            f"embedder {rec['name']!r}: the index was built with weights {str(rec.get('checksum'))[:12]}…, the "
            f"installed ones are {str(emb.checksum)[:12]}…; rebuild the index with `build_index` (`rebuild=True`)")
    if rec.get("dim") is not None and int(rec["dim"]) != emb.dim:
        raise InvalidParameterError(f"embedder {rec['name']!r} gives {emb.dim}-d vectors, the index holds "
                                    f"{rec['dim']}-d ones; rebuild the index with `build_index` (`rebuild=True`)")
    return emb


# --------------------------------------------------------------------------------------------------
# Training-free embedder: joint colour histogram + gradient-orientation histogram
# --------------------------------------------------------------------------------------------------


def _srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIE L*a*b* (D65) of 8-bit sRGB pixels ``(..., 3)``: L in 0..100, a and b roughly -128..127."""
    c = rgb.astype(np.float32) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124564, 0.3575761, 0.1804375],
                  [0.2126729, 0.7151522, 0.0721750],
                  [0.0193339, 0.1191920, 0.9503041]], dtype=np.float32)
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883], dtype=np.float32)
    eps = 216 / 24389
    f = np.where(xyz > eps, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


class ColourHistogramEmbedder:
    """Training-free image vectors: a joint colour histogram and a gradient-orientation histogram.

    Each image is read as 8-bit RGB and shrunk so that its longer side is at most ``max_side`` px.
    The colour part is a joint histogram in HSV (default ``8 × 4 × 4`` bins of hue × saturation ×
    value, hue bins of 45°) or CIE Lab (L in 0..100, a and b in -80..80, clipped); the texture part a
    histogram of unsigned gradient orientations (0..180°, central differences on the luminance)
    weighted by the gradient magnitude. Each histogram is normalised to sum 1, square-rooted (the
    Hellinger map, so that dot products become Bhattacharyya coefficients), the texture part is
    scaled by ``texture_weight`` and the concatenation is L2-normalised. The cosine between two
    vectors is therefore ``(BC_colour + w² BC_texture) / (1 + w²)`` for images with texture.

    Shape:
        ``dim = bins[0] * bins[1] * bins[2] + orientation_bins`` (136 by default).

    Args:
        space: ``"hsv"`` or ``"lab"``.
        bins: histogram bins per colour channel.
        orientation_bins: bins of the orientation histogram (0 for none).
        texture_weight: weight ``w`` of the texture part.
        max_side: longest side, px, at which the histograms are taken.

    References:
        Swain, M. J., Ballard, D. H. (1991). Color indexing. IJCV 7, 11-32.
        Arandjelović, R., Zisserman, A. (2012). Three things everyone should know to improve object
        retrieval (RootSIFT: the Hellinger map). CVPR.
    """

    name = "colour-histogram"
    checksum: str | None = None

    def __init__(self, space: str = "hsv", bins: Sequence[int] = (8, 4, 4), orientation_bins: int = 8,
                 texture_weight: float = 0.5, max_side: int = 256) -> None:
        space = str(space).lower()
        if space not in ("hsv", "lab"):
            raise InvalidParameterError(f"colour space {space!r}: use 'hsv' or 'lab'")
        bins = tuple(int(b) for b in bins)
        if len(bins) != 3 or any(b < 1 or b > 64 for b in bins):
            raise InvalidParameterError(f"bins {list(bins)}: need three counts between 1 and 64")
        if not 0 <= int(orientation_bins) <= 64:
            raise InvalidParameterError(f"orientation_bins {orientation_bins}: need 0..64")
        if not (np.isfinite(texture_weight) and texture_weight >= 0):
            raise InvalidParameterError(f"texture_weight {texture_weight}: need a finite value >= 0")
        if int(max_side) < 8:
            raise InvalidParameterError(f"max_side {max_side}: need at least 8 px")
        self.space = space
        self.bins = bins
        self.orientation_bins = int(orientation_bins)
        self.texture_weight = float(texture_weight)
        self.max_side = int(max_side)
        self.dim = bins[0] * bins[1] * bins[2] + self.orientation_bins
        self.config: dict[str, Any] = {"space": space, "bins": list(bins), "orientation_bins": self.orientation_bins,
                                       "texture_weight": self.texture_weight, "max_side": self.max_side}

    def __repr__(self) -> str:
        return f"ColourHistogramEmbedder({', '.join(f'{k}={v!r}' for k, v in self.config.items())})"

    def _colour_hist(self, rgb: np.ndarray) -> np.ndarray:
        b0, b1, b2 = self.bins
        if self.space == "hsv":
            hsv = np.asarray(Image.fromarray(rgb, "RGB").convert("HSV"), dtype=np.int64)
            idx = [(hsv[..., c] * n) >> 8 for c, n in enumerate(self.bins)]
        else:
            lab = _srgb_to_lab(rgb)
            lo = np.array([0.0, -80.0, -80.0], dtype=np.float32)
            span = np.array([100.0, 160.0, 160.0], dtype=np.float32)
            frac = np.clip((lab - lo) / span, 0.0, 1.0 - 1e-6)
            idx = [(frac[..., c] * n).astype(np.int64) for c, n in enumerate(self.bins)]
        joint = (idx[0] * b1 + idx[1]) * b2 + idx[2]
        hist = np.bincount(joint.ravel(), minlength=b0 * b1 * b2).astype(np.float64)
        return hist / max(hist.sum(), 1.0)

    def _orientation_hist(self, rgb: np.ndarray) -> np.ndarray:
        nb = self.orientation_bins
        if nb == 0:
            return np.zeros(0)
        g = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        gx = np.zeros_like(g)
        gy = np.zeros_like(g)
        gx[:, 1:-1] = g[:, 2:] - g[:, :-2]
        gy[1:-1, :] = g[2:, :] - g[:-2, :]
        mag = np.hypot(gx, gy)
        theta = np.mod(np.arctan2(gy, gx), np.pi)
        idx = np.minimum((theta / np.pi * nb).astype(np.int64), nb - 1)
        hist = np.bincount(idx.ravel(), weights=mag.ravel(), minlength=nb)
        total = hist.sum()
        return hist / total if total > 0 else np.zeros(nb)

    def embed_array(self, rgb: np.ndarray) -> np.ndarray:
        """Vector ``(dim,)`` float32 of one ``(H, W, 3)`` uint8 RGB array (already resized)."""
        rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise InvalidParameterError(f"expected an (H, W, 3) RGB array, got shape {rgb.shape}")
        parts = [np.sqrt(self._colour_hist(rgb)), self.texture_weight * np.sqrt(self._orientation_hist(rgb))]
        return l2_normalise(np.concatenate(parts)[None, :])[0]

    def embed_image(self, image: Image.Image) -> np.ndarray:
        """Vector of one PIL image (converted to RGB and shrunk to ``max_side``)."""
        im = image.convert("RGB") if image.mode != "RGB" else image.copy()
        im.thumbnail((self.max_side, self.max_side), Image.Resampling.BILINEAR)
        return self.embed_array(np.asarray(im))

    def embed_paths(self, paths: Sequence[str | os.PathLike[str]]) -> EmbedBatch:
        """Embed image files; unreadable ones go to ``failures`` with a one-line reason."""
        done: list[str] = []
        rows: list[np.ndarray] = []
        failures: list[tuple[str, str]] = []
        for p in paths:
            try:
                rows.append(self.embed_image(load_rgb(p, notify=False)))
                done.append(str(p))
            except ArtlensError as exc:
                failures.append((str(p), str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
            except (OSError, ValueError, MemoryError) as exc:
                failures.append((str(p), f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"))
        vectors = np.stack(rows).astype(np.float32) if rows else np.zeros((0, self.dim), dtype=np.float32)
        return EmbedBatch(done, vectors, failures)


@register_embedder("colour-histogram")
def colour_histogram(**config: Any) -> ColourHistogramEmbedder:
    """Factory of :class:`ColourHistogramEmbedder` (training-free; no weights, checksum ``None``)."""
    return ColourHistogramEmbedder(**config)
