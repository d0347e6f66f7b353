"""Backbone features of paintings: a global view and full-resolution patches (multi-crop).

A painting is seen twice: the **global view** (the whole image resized to the backbone's input,
224 × 224 px: composition and colour masses) and **patches** (224 × 224 px tiles taken at the
image's own resolution, capped at ``max_side`` px on the long side: brushwork, line, texture).
:class:`FeatureExtractor` returns pooled backbone features for both; :class:`BackboneEmbedder`
turns them into one L2-normalised vector per image for search and verification.

Speed on CPU comes from the pipeline, not from changing what the model computes: JPEGs are decoded
at reduced size when the views allow it (libjpeg DCT scaling via ``Image.draft``), decoding runs in a
thread pool while the model works, images are batched, inference runs under
``torch.inference_mode`` in channels-last memory layout, in passes of at most
:data:`VIEWS_PER_PASS` views (activations stay in cache), on a copy of the backbone whose batch
norms are folded into its convolutions (:func:`fold_batchnorm`; the same outputs to float rounding).
``precision="bf16"`` (opt-in) runs the convolutions in bfloat16 under ``torch.autocast``: about
1.8× faster on CPUs with AMX or AVX-512 BF16 units, vectors within cosine 0.999 of the fp32 ones,
slower on CPUs without them (:func:`bf16_is_fast` tells). The default stays fp32 so that the same
image gives the same vector on every machine. ``benchmarks/bench_embed_speed.py`` measures it
against a plain loop.

This is the one feature API of artlens' painting code: classification, verification, search (through
the embedders) and Grad-CAM all get their features from :class:`FeatureExtractor`. Its options:

- ``view``: ``"grid"`` (global view + ``n_patches`` grid patches), ``"mirror"`` (the same views of the
  image mirrored left-right: augmentation and test-time augmentation), ``"crops"`` (global view +
  ``n_patches`` crops of the whole image, :func:`crop_boxes`: further global views for augmentation
  and test-time augmentation) or ``"centre"`` (one view, shorter side resized to the input, centre
  crop: the usual ImageNet evaluation view);
- ``pooling`` (:data:`FEATURE_POOLINGS`): ``"avg"``, the backbone's pooled output, or ``"stats"``,
  channel means and standard deviations of the last block stages
  (:func:`~artlens.models.pooling.forward_pooled`);
- ``signed_sqrt``: ``sign(x)·√|x|`` on every pooled feature (power normalisation, Perronnin et al.
  2010), which damps the few large activations that otherwise dominate a cosine.

:meth:`FeatureExtractor.pooled_with_maps` gives the same pooled features differentiably, with the
feature maps they were pooled from (Grad-CAM, fine-tuning). Tiles at full resolution
(:func:`tile_grid_size`, :func:`tile_boxes`, :func:`patch_boxes`) and :func:`normalise_views` are the
helpers the views are built with.

References:
    F. Perronnin, J. Sánchez, T. Mensink, "Improving the Fisher kernel for large-scale image
    classification", ECCV 2010 (power normalisation).
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from artlens.errors import ArtlensError, InvalidParameterError
from artlens.paintings.embedding import EmbedBatch, l2_normalise
from artlens.paintings.images import load_rgb

VIEWS_PER_PASS = 16
"""Views per forward pass on the CPU (batches of images are split into passes of this many views)."""

PRECISIONS = ("fp32", "bf16")
"""Arithmetic of the forward pass: float32, or bfloat16 under ``torch.autocast`` (outputs float32)."""

VIEWS = ("grid", "mirror", "crops", "centre")
"""Views of an image (:class:`FeatureExtractor`'s ``view``)."""

FEATURE_POOLINGS = ("avg", "stats")
"""How backbone feature maps become one vector per view (:mod:`artlens.models.pooling`, whose
functions :func:`forward_pooled`, :func:`feature_levels` and :func:`signed_sqrt` this module
re-exports without importing torch until they are used)."""

_POOLING_NAMES = ("forward_pooled", "feature_levels", "signed_sqrt")


def __getattr__(name: str) -> Any:
    if name in _POOLING_NAMES:  # torch is imported only when these are used
        from artlens.models import pooling

        return getattr(pooling, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def bf16_is_fast() -> bool:
    """Whether this CPU has bfloat16 matrix units (AMX tiles or AVX-512 BF16), where ``precision="bf16"``
    pays off; without them bfloat16 is emulated and slower than float32."""
    import torch

    cpu = getattr(torch, "cpu", None)
    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        fn = getattr(cpu, probe, None)
        try:
            if fn is not None and fn():
                return True
        except Exception:  # noqa: BLE001 - a private probe; absent or failing means "no"
            continue
    return False


@dataclass
class Features:
    """Pooled backbone features of a set of images.

    Attributes:
        paths: images that could be read, in input order.
        global_: ``(n, D)`` features of the global view.
        patches: ``(n, P, D)`` features of the patches (``P = 0`` without multi-crop).
        maps: ``(n, D, h, w)`` unpooled feature maps of the global view, when requested.
        failures: ``(path, reason)`` of the images that could not be read.
    """

    paths: list[str]
    global_: np.ndarray
    patches: np.ndarray
    maps: np.ndarray | None = None
    failures: list[tuple[str, str]] = field(default_factory=list)


def patch_boxes(width: int, height: int, size: int, n: int) -> list[tuple[int, int, int, int]]:
    """``n`` square ``size``-px boxes spread evenly over a ``width`` × ``height`` image.

    The boxes sit on a ``rows × cols`` grid chosen to follow the image's aspect ratio; with more
    grid cells than ``n`` the cells are taken evenly along the grid order. Boxes overlap when the
    image is small and never leave it.

    Returns:
        ``(left, top, right, bottom)`` boxes, deterministic.
    """
    if width < size or height < size:
        raise ValueError(f"image {width}x{height} is smaller than a {size}-px patch")
    cols = max(1, round(math.sqrt(n * width / height)))
    rows = max(1, math.ceil(n / cols))
    xs = np.linspace(0, width - size, cols).round().astype(int) if cols > 1 else [(width - size) // 2]
    ys = np.linspace(0, height - size, rows).round().astype(int) if rows > 1 else [(height - size) // 2]
    cells = [(int(x), int(y)) for y in ys for x in xs]
    pick = np.linspace(0, len(cells) - 1, n).round().astype(int) if len(cells) > n else range(len(cells))
    return [(cells[i][0], cells[i][1], cells[i][0] + size, cells[i][1] + size) for i in pick]


CROP_AREA = (0.35, 1.0)
"""Fraction of the image's area a crop of :func:`crop_boxes` covers (drawn uniformly in this range)."""


def crop_boxes(width: int, height: int, n: int) -> list[tuple[tuple[int, int, int, int], bool]]:
    """``n`` crops of a ``width`` × ``height`` image, the same fractions of every image: the views
    of ``view="crops"``.

    Crop ``k`` covers a fraction of the image's area drawn in :data:`CROP_AREA`, with an aspect ratio
    between 3:4 and 4:3 of the image's own (clipped to the image) and a position drawn across it;
    every second crop is mirrored. The draws come from one fixed seed, so an image always gets the
    same crops, whatever its file is called (training's augmentation and test-time augmentation both
    use them: a classifier never sees a crop at test time that its training could not have drawn).

    Returns:
        ``((left, top, right, bottom), mirrored)`` per crop.

    Example:
        >>> [m for _, m in crop_boxes(400, 300, 4)]
        [False, True, False, True]
    """
    rng = np.random.default_rng(20261208)
    out = []
    for k in range(n):
        area = rng.uniform(*CROP_AREA)
        ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        fx, fy = rng.uniform(), rng.uniform()
        cw = min(width, max(1, round(width * math.sqrt(area * ratio))))
        ch = min(height, max(1, round(height * math.sqrt(area / ratio))))
        left, top = round(fx * (width - cw)), round(fy * (height - ch))
        out.append(((left, top, left + cw, top + ch), k % 2 == 1))
    return out


def tile_grid_size(width: int, height: int, max_side: int, size: int) -> tuple[int, int]:
    """Size ``(w, h)`` of the image that patches and tiles are cut from: the image itself, reduced so
    that its long side is at most ``max_side`` px, and enlarged when a side is shorter than one tile
    (``size``).

    Example:
        >>> tile_grid_size(4000, 3000, 1024, 224)
        (1024, 768)
    """
    scale = min(1.0, max_side / max(width, height))
    scale = max(scale, size / min(width, height))
    if abs(scale - 1.0) <= 1e-3:
        return width, height
    return max(size, round(width * scale)), max(size, round(height * scale))


def tile_boxes(width: int, height: int, size: int, n: int | None = None) -> list[tuple[int, int, int, int]]:
    """Square ``size``-px tiles over a ``width`` × ``height`` image.

    Args:
        width, height: image size, px (at least ``size`` each).
        size: tile side, px.
        n: number of tiles on an even grid (:func:`patch_boxes`, the patches features are cached
            with); ``None`` gives **all** tiles: the smallest regular grid whose tiles cover every
            pixel (neighbours overlap when the image is not a multiple of ``size``).

    Returns:
        ``(left, top, right, bottom)`` boxes, row by row.

    Raises:
        InvalidParameterError: an image smaller than one tile.

    Example:
        >>> len(tile_boxes(500, 300, 224))  # 3 columns x 2 rows cover 500 x 300 px
        6
    """
    if width < size or height < size:
        raise InvalidParameterError(f"image {width}x{height} is smaller than a {size}-px tile")
    if n is not None:
        return patch_boxes(width, height, size, n)
    cols, rows = math.ceil(width / size), math.ceil(height / size)
    xs = np.linspace(0, width - size, cols).round().astype(int) if cols > 1 else [0]
    ys = np.linspace(0, height - size, rows).round().astype(int) if rows > 1 else [0]
    return [(int(x), int(y), int(x) + size, int(y) + size) for y in ys for x in xs]


def normalise_views(crops: Sequence[Image.Image], mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """RGB crops → ``(N, 3, S, S)`` float32 normalised with the backbone's mean and std."""
    arr = np.stack([np.asarray(c, dtype=np.float32) for c in crops]) / 255.0
    m, s = np.asarray(mean, np.float32), np.asarray(std, np.float32)
    return ((arr - m) / s).transpose(0, 3, 1, 2).copy()


class FeatureExtractor:
    """Backbone features of painting images: global view and patches, pooled one of several ways.

    Args:
        backbone: timm name (default ``tf_efficientnet_lite0``, offline weights).
        checkpoint: ``.safetensors`` backbone weights for other names offline.
        n_patches: full-resolution patches per image (0: global view only).
        max_side: images larger than this (long side, px) are reduced before patches are cut, so a
            patch always covers a comparable part of a painting photograph.
        batch_size: images per forward pass.
        workers: decoding threads (0 decodes in the calling thread).
        return_maps: keep the global view's unpooled feature maps (for the Siamese recipe).
        device: ``"cpu"``, ``"cuda"``...
        model, preprocess: a ready backbone and its :class:`~artlens.models.backbones.Preprocess`
            (shared with a classifier, tests), instead of building ``backbone``.
        precision: ``"fp32"`` (default) or ``"bf16"`` (:data:`PRECISIONS`; faster on CPUs with
            bfloat16 units, see :func:`bf16_is_fast`; recorded in :meth:`config`).
        view: ``"grid"`` (default), ``"mirror"``, ``"crops"`` (``n_patches`` crops of the whole image
            instead of grid patches) or ``"centre"`` (:data:`VIEWS`; ``"centre"`` has no patches).
        pooling: ``"avg"`` (default) or ``"stats"`` (:data:`FEATURE_POOLINGS`).
        signed_sqrt: power-normalise every pooled feature, ``sign(x)·√|x|``.
        levels: the stages ``"stats"`` pooling summarises (default:
            :func:`~artlens.models.pooling.feature_levels` of the backbone; a saved classifier passes
            its own).

    The default options (``grid``, ``avg``, no ``signed_sqrt``) leave :meth:`config` (and so
    feature-cache keys) as they were before the other options existed.

    References:
        M. Tan, Q. V. Le, "EfficientNet: Rethinking model scaling for convolutional neural networks",
        ICML 2019 (EfficientNet-Lite: the TensorFlow Lite variant without squeeze-excitation).
    """

    def __init__(self, backbone: str | None = None, *, checkpoint: str | None = None, n_patches: int = 4,
                 max_side: int = 1024, batch_size: int = 16, workers: int = 2, return_maps: bool = False,
                 device: str = "cpu", model: Any = None, preprocess: Any = None, precision: str = "fp32",
                 view: str = "grid", pooling: str = "avg", signed_sqrt: bool = False,
                 levels: Sequence[str] | None = None) -> None:
        from artlens.models.backbones import LITE0, OFFLINE_BACKBONES, create_backbone, offline_checksum
        from artlens.models.pooling import feature_levels

        if precision not in PRECISIONS:
            raise InvalidParameterError(f"unknown precision {precision!r}; use {' or '.join(PRECISIONS)}")
        if view not in VIEWS:
            raise InvalidParameterError(f"unknown view {view!r}; use {', '.join(VIEWS)}")
        if view == "centre":
            n_patches = 0
        self.precision = precision
        self.backbone_name = backbone or LITE0
        if model is None:
            model, preprocess = create_backbone(self.backbone_name, checkpoint=checkpoint)
        if n_patches < 0 or batch_size < 1 or max_side < 64:
            raise InvalidParameterError("n_patches >= 0, batch_size >= 1 and max_side >= 64 are required")
        self.model = model.eval().to(device)
        self.preprocess = preprocess
        self.size = int(preprocess.input_size)
        self.n_patches = int(n_patches)
        self.max_side = int(max_side)
        self.batch_size = int(batch_size)
        self.workers = int(workers)
        self.return_maps = bool(return_maps)
        self.device = device
        self.view = view
        self.levels: list[str] = feature_levels(self.model, pooling)  # checks the pooling kind
        if levels and pooling != "avg":
            self.levels = list(levels)
        self.pooling = pooling
        self.signed_sqrt = bool(signed_sqrt)
        self.checksum = (_file_checksum(checkpoint) if checkpoint
                         else offline_checksum(self.backbone_name) if self.backbone_name in OFFLINE_BACKBONES
                         else None)
        if pooling == "avg":
            self.dim = int(getattr(self.model, "num_features", 0)) or self._probe_dim()
        self.model = self.model.to(memory_format=_channels_last())
        if pooling != "avg":
            self.dim = self._probe_dim()

    # -- views ------------------------------------------------------------------------------------
    def views(self, img: Image.Image) -> np.ndarray:
        """The views of one RGB image, normalised with the backbone's mean and std: for ``"grid"``,
        ``"mirror"`` and ``"crops"`` the global view and the patches (crops), ``(1 + n_patches, 3, S,
        S)`` float32; for ``"centre"`` the centre crop, ``(1, 3, S, S)``."""
        s = self.size
        if self.view == "crops":
            views = [img]
            for box, mirrored in crop_boxes(img.size[0], img.size[1], self.n_patches):
                views.append(ImageOps.mirror(img.crop(box)) if mirrored else img.crop(box))
            return normalise_views([v.resize((s, s), Image.Resampling.BILINEAR, reducing_gap=3.0) for v in views],
                                   self.preprocess.mean, self.preprocess.std)
        if self.view == "mirror":
            img = ImageOps.mirror(img)
        if self.view == "centre":
            w, h = img.size
            sc = s / min(w, h)
            img = img.resize((max(s, round(w * sc)), max(s, round(h * sc))), Image.Resampling.BILINEAR,
                             reducing_gap=3.0)
            w, h = img.size
            left, top = (w - s) // 2, (h - s) // 2
            return normalise_views([img.crop((left, top, left + s, top + s))], self.preprocess.mean,
                                   self.preprocess.std)
        if self.n_patches:
            return self.tile_views(img, self.n_patches)[0]
        return normalise_views([img.resize((s, s), Image.Resampling.BILINEAR, reducing_gap=3.0)],
                               self.preprocess.mean, self.preprocess.std)

    def tile_views(self, img: Image.Image, n_tiles: int | None) -> tuple[np.ndarray, Image.Image,
                                                                          list[tuple[int, int, int, int]]]:
        """The global view and full-resolution tiles of an RGB image (as it is: no mirroring).

        Args:
            img: the image.
            n_tiles: tiles on an even grid (:func:`patch_boxes`: the patches :meth:`views` gives for
                ``n_patches`` of them), ``None`` for all tiles covering the image (:func:`tile_boxes`),
                0 for none.

        Returns:
            ``(views, grid, boxes)``: normalised views ``(1 + T, 3, S, S)`` float32, global view first;
            the image the tiles were cut from (long side capped at ``max_side`` px, small images
            enlarged to hold one tile, :func:`tile_grid_size`); the tile boxes in it.
        """
        s = self.size
        crops = [img.resize((s, s), Image.Resampling.BILINEAR, reducing_gap=3.0)]
        w, h = tile_grid_size(img.size[0], img.size[1], self.max_side, s)
        grid = img if (w, h) == img.size else img.resize((w, h), Image.Resampling.BILINEAR, reducing_gap=3.0)
        boxes = [] if n_tiles == 0 else tile_boxes(w, h, s, n_tiles)
        crops += [grid.crop(b) for b in boxes]
        return normalise_views(crops, self.preprocess.mean, self.preprocess.std), grid, boxes

    def _decode(self, path: str) -> np.ndarray | str:
        try:
            if self.n_patches and self.view != "crops":
                img = load_rgb(path, min_side=self.size, min_long_side=self.max_side)
            else:
                img = load_rgb(path, min_side=self.size)
            return self.views(img)
        except ArtlensError as exc:
            return str(exc)

    def _decoded(self, paths: Sequence[str]) -> Iterator[tuple[str, np.ndarray | str]]:
        if self.workers <= 0:
            for p in paths:
                yield p, self._decode(p)
            return
        # A bounded window of decodes in flight: memory stays flat on a million-image collection.
        ahead = max(2 * self.batch_size, 4 * self.workers)
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            window: deque[tuple[str, Any]] = deque()
            for p in paths:
                window.append((p, pool.submit(self._decode, p)))
                if len(window) >= ahead:
                    q, fut = window.popleft()
                    yield q, fut.result()
            while window:
                q, fut = window.popleft()
                yield q, fut.result()

    # -- forward ----------------------------------------------------------------------------------
    def forward_views(self, x: Any) -> tuple[Any, Any]:
        """Pooled features ``(B, D)`` and feature maps of normalised views ``(B, 3, S, S)``, under
        inference mode: the last feature maps ``(B, C, h, w)`` for ``"avg"`` pooling, the last
        summarised stage's for ``"stats"``."""
        import torch

        from artlens.models.pooling import forward_pooled, signed_sqrt

        if self.pooling == "avg":
            model = self._inference_model()
            with torch.inference_mode(), self._autocast():
                x = x.to(self.device).contiguous(memory_format=_channels_last())
                # a batch of images holds (1 + n_patches) views each; on the CPU, passes of at most
                # VIEWS_PER_PASS views keep the activations in cache (about 25 % less time than 80 at once)
                step = x.shape[0] if x.device.type != "cpu" else VIEWS_PER_PASS
                parts = [model.forward_features(c) for c in x.split(step)]
                maps = parts[0] if len(parts) == 1 else torch.cat(parts)
                pooled = model.forward_head(maps, pre_logits=True)
            pooled, maps = pooled.float(), maps.float()
        else:
            with torch.inference_mode(), self._autocast():
                x = x.to(self.device).contiguous(memory_format=_channels_last())
                pooled, outs = forward_pooled(self.model, x, self.pooling, self.levels)
            pooled, maps = pooled.float(), outs[-1].float()
        return (signed_sqrt(pooled) if self.signed_sqrt else pooled), maps

    def pooled_with_maps(self, x: Any) -> tuple[Any, list[Any]]:
        """Pooled features of views ``x`` as :meth:`forward_views` computes them (same pooling, same
        ``signed_sqrt``), and every feature map they were pooled from, differentiably: for Grad-CAM
        and fine-tuning. Runs :attr:`model` itself (not the folded inference copy) outside inference
        mode.

        Shape:
            x: ``(B, 3, S, S)`` → ``(B, D)`` and a list of ``(B, C_l, h_l, w_l)`` maps.
        """
        from artlens.models.pooling import forward_pooled, signed_sqrt

        pooled, maps = forward_pooled(self.model, x, self.pooling, self.levels)
        return (signed_sqrt(pooled) if self.signed_sqrt else pooled), maps

    def _autocast(self) -> Any:
        """``torch.autocast`` to bfloat16 when :attr:`precision` is ``"bf16"``, else a no-op context."""
        import contextlib

        import torch

        if self.precision != "bf16":
            return contextlib.nullcontext()
        return torch.autocast(device_type=torch.device(self.device).type, dtype=torch.bfloat16)

    def _inference_model(self) -> Any:
        """The model to run under inference mode: a copy of :attr:`model` with its batch norms folded
        into the convolutions (:func:`fold_batchnorm`), rebuilt whenever the weights of :attr:`model`
        change; :attr:`model` itself while it is in training mode or when it cannot be folded."""
        if self.model.training:
            return self.model
        key = tuple((t.data_ptr(), t._version) for t in (*self.model.parameters(), *self.model.buffers()))
        if key != getattr(self, "_folded_key", None):
            self._folded = fold_batchnorm(self.model)
            self._folded_key = key
        return self._folded if self._folded is not None else self.model

    def extract(self, paths: Sequence[str | os.PathLike[str]], progress: Any = None) -> Features:
        """Features of every readable image in ``paths``; unreadable ones land in ``failures``."""
        import torch

        names = [str(p) for p in paths]
        n_views = 1 + self.n_patches
        ok: list[str] = []
        failures: list[tuple[str, str]] = []
        glob: list[np.ndarray] = []
        pats: list[np.ndarray] = []
        maps_out: list[np.ndarray] = []
        pending_paths: list[str] = []
        pending: list[np.ndarray] = []

        def flush() -> None:
            if not pending:
                return
            x = torch.from_numpy(np.concatenate(pending))
            pooled, maps = self.forward_views(x)
            pooled = pooled.float().cpu().numpy().reshape(len(pending), n_views, -1)
            glob.append(pooled[:, 0])
            pats.append(pooled[:, 1:])
            if self.return_maps:
                m = maps.float().cpu().numpy()
                maps_out.append(m.reshape(len(pending), n_views, *m.shape[1:])[:, 0])
            ok.extend(pending_paths)
            pending.clear()
            pending_paths.clear()

        for path, views in self._decoded(names):
            if isinstance(views, str):
                failures.append((path, views))
            else:
                pending.append(views)
                pending_paths.append(path)
                if len(pending) >= self.batch_size:
                    flush()
            if progress is not None:
                progress(1)
        flush()
        d = self.dim
        return Features(
            paths=ok,
            global_=np.concatenate(glob) if glob else np.zeros((0, d), np.float32),
            patches=np.concatenate(pats) if pats else np.zeros((0, self.n_patches, d), np.float32),
            maps=np.concatenate(maps_out) if maps_out else None,
            failures=failures,
        )

    def config(self) -> dict[str, Any]:
        cfg = {"backbone": self.backbone_name, "input_px": self.size, "n_patches": self.n_patches,
               "max_side_px": self.max_side, "preprocess": self.preprocess.to_dict()}
        if self.precision != "fp32":  # fp32 configs (and feature caches made before) stay as they were
            cfg["precision"] = self.precision
        if self.view != "grid":  # likewise the other options: default settings keep the old keys
            cfg["view"] = self.view
        if self.pooling != "avg":
            cfg["pooling"], cfg["levels"] = self.pooling, list(self.levels)
        if self.signed_sqrt:
            cfg["signed_sqrt"] = True
        return cfg

    def _probe_dim(self) -> int:
        import torch

        pooled, _ = self.forward_views(torch.zeros(1, 3, self.size, self.size))
        return int(pooled.shape[-1])


def grad_cam_maps(maps: Sequence[Any], grads: Sequence[Any], size: int) -> np.ndarray:
    """Grad-CAM of views from the feature maps their features were pooled from
    (:meth:`FeatureExtractor.pooled_with_maps`) and the gradients of a score with respect to them.

    Each map's channels are weighted by their gradient averaged over space; the positive part of the
    weighted sum is upsampled (bilinear) to the view and scaled by its maximum over all views; with
    several maps (``"stats"`` pooling: one per summarised stage) the scaled maps are averaged.

    Shape:
        maps, grads: lists of ``(B, C_l, h_l, w_l)`` → ``(B, size, size)`` float32 in [0, 1].

    References:
        R. R. Selvaraju et al., "Grad-CAM: Visual explanations from deep networks via gradient-based
        localization", ICCV 2017.
    """
    import torch
    from torch import nn

    cams = np.zeros((int(maps[0].shape[0]), size, size), np.float32)
    for m, g in zip(maps, grads, strict=True):
        weighted = torch.relu((g.mean(dim=(2, 3), keepdim=True) * m.detach()).sum(1, keepdim=True)).float()
        up = nn.functional.interpolate(weighted, size=(size, size), mode="bilinear", align_corners=False)
        cam = up[:, 0].numpy()
        cams += cam / cam.max() if cam.max() > 0 else cam
    cams /= len(maps)
    return cams


def fold_batchnorm(model: Any) -> Any:
    """An inference copy of a timm EfficientNet-family backbone with every batch norm folded into the
    convolution before it, or ``None`` for other models.

    In eval mode ``BN(conv(x)) = γ (W * x + b − μ) / √(σ² + ε) + β`` is one convolution with weights
    ``W γ / √(σ² + ε)`` and bias ``(b − μ) γ / √(σ² + ε) + β``; the norm layer is replaced by what follows
    it (timm's ``BatchNormAct2d``: its dropout and activation). The result equals the original to float
    rounding and saves one memory-bound pass per convolution (about 25 % of Lite0's CPU time). Only
    :class:`timm.models.efficientnet.EfficientNet` models are folded, whose blocks apply each
    convolution's norm layer right after it in the order they are registered; the model passed in
    is not changed.
    """
    import copy

    import torch
    from torch import nn

    try:
        from timm.models.efficientnet import EfficientNet
    except ImportError:  # pragma: no cover - timm is a dependency
        return None
    if not isinstance(model, EfficientNet):
        return None
    folded = copy.deepcopy(model).eval()
    with torch.no_grad():
        for parent in folded.modules():
            children = list(parent.named_children())
            for (_, conv), (bn_name, bn) in zip(children, children[1:], strict=False):
                if not isinstance(conv, nn.Conv2d) or not isinstance(bn, nn.BatchNorm2d):
                    continue
                if bn.running_mean is None or bn.running_var is None:
                    continue
                scale = (bn.weight if bn.weight is not None else torch.ones_like(bn.running_var)) / torch.sqrt(
                    bn.running_var + bn.eps)
                shift = bn.bias if bn.bias is not None else torch.zeros_like(bn.running_mean)
                bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
                conv.weight = nn.Parameter(conv.weight * scale.reshape(-1, 1, 1, 1), requires_grad=False)
                conv.bias = nn.Parameter((bias - bn.running_mean) * scale + shift, requires_grad=False)
                after = [m for m in (getattr(bn, "drop", None), getattr(bn, "act", None)) if m is not None]
                setattr(parent, bn_name, nn.Sequential(*after) if after else nn.Identity())
    return folded.to(memory_format=_channels_last())


def combine_views(global_: np.ndarray, patches: np.ndarray) -> np.ndarray:
    """One vector per image: L2-normalised global features and L2-normalised patch mean, concatenated
    and normalised again (equal weight to composition and brushwork). ``(n, D), (n, P, D) → (n, 2D)``
    (``(n, D)`` when there are no patches)."""
    g = l2_normalise(global_)
    if patches.shape[1] == 0:
        return g
    return l2_normalise(np.concatenate([g, l2_normalise(patches.mean(axis=1))], axis=1))


class BackboneEmbedder:
    """:class:`~artlens.paintings.embedding.Embedder` over frozen backbone features (multi-crop).

    ``name`` is ``"lite0"`` for the default backbone with patches, ``"lite0-global"`` without.
    """

    def __init__(self, backbone: str | None = None, *, n_patches: int = 4, max_side: int = 1024,
                 batch_size: int = 16, workers: int = 2, checkpoint: str | None = None,
                 precision: str = "fp32") -> None:
        self.extractor = FeatureExtractor(backbone, n_patches=n_patches, max_side=max_side, batch_size=batch_size,
                                          workers=workers, checkpoint=checkpoint, precision=precision)
        from artlens.models.backbones import LITE0

        base = "lite0" if self.extractor.backbone_name == LITE0 else self.extractor.backbone_name
        self.name = base if n_patches else f"{base}-global"
        self.dim = self.extractor.dim * (2 if n_patches else 1)
        self.checksum = self.extractor.checksum
        self.config = {"backbone": self.extractor.backbone_name, "n_patches": n_patches, "max_side": max_side,
                       **({"checkpoint": str(checkpoint)} if checkpoint else {}),
                       **({"precision": precision} if precision != "fp32" else {})}

    def embed_paths(self, paths: Sequence[str | os.PathLike[str]], progress: Any = None) -> EmbedBatch:
        f = self.extractor.extract(paths, progress=progress)
        return EmbedBatch(paths=f.paths, vectors=combine_views(f.global_, f.patches), failures=f.failures)


def backbone_file(backbone: Any) -> tuple[bytes, str]:
    """A backbone's weights as the bytes of a ``.safetensors`` file and their SHA-256: what a model
    folder saves as ``backbone.safetensors`` (through :func:`artlens.models.checkpoint.save_weights`)
    and records as ``backbone_sha256``, for a fine-tuned or non-pretrained backbone."""
    import hashlib

    from safetensors.torch import save

    data = save({k: v.detach().cpu().contiguous() for k, v in backbone.state_dict().items()})
    return data, hashlib.sha256(data).hexdigest()


def check_backbone_file(folder: Any, doc: dict[str, Any], name: str | None) -> None:
    """Check a model folder's backbone file against the ``backbone_sha256`` its config records (when it
    records one; folders listing it under ``files`` are checked by
    :func:`artlens.models.checkpoint.verify_files` as well).

    Raises:
        UnreadableInputError: the backbone file is missing or changed.
    """
    import os

    from artlens.errors import UnreadableInputError
    from artlens.provenance import sha256_file

    expected = doc.get("backbone_sha256")
    if not expected or not name:
        return
    path = name if os.path.isabs(name) else os.path.join(str(folder), name)
    if not os.path.isfile(path):
        raise UnreadableInputError(f"{path}: backbone weights named in the config are missing")
    if sha256_file(path) != expected:
        raise UnreadableInputError(f"{path}: checksum does not match config.json (file changed?)")


def _channels_last() -> Any:
    import torch

    return torch.channels_last


def _file_checksum(path: str | None) -> str | None:
    if not path:
        return None
    from artlens.provenance import sha256_file

    return sha256_file(path)


def _register() -> None:
    try:
        from artlens.paintings.embedders import register_embedder
    except ImportError:  # registry not available
        return

    for name, n in (("lite0", 4), ("lite0-global", 0)):
        def factory(n_patches: int = n, **kw: Any) -> BackboneEmbedder:
            return BackboneEmbedder(n_patches=n_patches, **kw)

        try:
            register_embedder(name)(factory)
        except ValueError:  # already registered (module reloaded)
            pass


_register()


def cached_features(paths: Sequence[str | os.PathLike[str]], extractor: FeatureExtractor,
                    cache: str | os.PathLike[str] | None) -> Features:
    """:meth:`FeatureExtractor.extract`, stored in (and reused from) an ``.npz`` file.

    The cache is used only when it was made by the same extractor settings for the same paths,
    with file sizes and modification times unchanged; otherwise features are recomputed and the
    file rewritten. Frozen-backbone training stages then take seconds instead of minutes.
    """
    import json

    names = [str(p) for p in paths]
    stamp = [(p, *_stat(p)) for p in names]
    key = json.dumps({"config": extractor.config(), "maps": extractor.return_maps, "files": stamp}, sort_keys=True)
    if cache is not None and os.path.exists(cache):
        try:
            with np.load(cache, allow_pickle=False) as z:
                if str(z["key"]) == key:
                    fails = json.loads(str(z["failures"]))
                    return Features(paths=[str(p) for p in z["paths"]], global_=z["global_"], patches=z["patches"],
                                    maps=z["maps"] if "maps" in z.files else None,
                                    failures=[tuple(f) for f in fails])
        except (OSError, ValueError, KeyError):
            pass  # unreadable cache: recompute
    f = extractor.extract(names)
    if cache is not None:
        os.makedirs(os.path.dirname(os.path.abspath(cache)), exist_ok=True)
        extra: dict[str, Any] = {"maps": f.maps} if f.maps is not None else {}
        tmp = f"{cache}.{os.getpid()}.tmp.npz"  # per process: DDP ranks may write the same cache at once
        np.savez(tmp, key=np.array(key), paths=np.array(f.paths), global_=f.global_, patches=f.patches,
                 failures=np.array(json.dumps(f.failures)), **extra)
        os.replace(tmp, cache)
    return f


def _stat(path: str) -> tuple[int, float]:
    try:
        st = os.stat(path)
        return st.st_size, st.st_mtime
    except OSError:
        return -1, 0.0
