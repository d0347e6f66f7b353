"""Autoencoders over frozen backbone features: a denoising autoencoder (DAE) and a sliced-Wasserstein
autoencoder (SWAE), and the embedder that turns a trained one into search vectors.

**What they encode.** Not pixels but the frozen multi-crop backbone features of
:mod:`artlens.paintings.features`: for each painting the L2-normalised global-view features and the
L2-normalised mean of its full-resolution patch features, concatenated and normalised again
(:func:`~artlens.paintings.features.combine_views`; 2 × 1280 = 2560 values with EfficientNet-Lite0,
1280 without patches). The backbone pass is the expensive part; it is done once per image and cached
(``cached_features``), after which an autoencoder of two small MLPs trains in a minute or two on one
CPU core (a few hundred steps of batch 128 on 1 300 paintings), and
the codes inherit the backbone's ImageNet knowledge instead of re-learning edges and textures from
a few thousand paintings. (The seed project's convolutional autoencoders on 64-128 px images are not
reproduced here: at that size brushwork is gone, and training them takes hours on a CPU.)

- **DAE** (Vincent et al. 2008): the standardised feature vector is corrupted (Gaussian noise of
  ``noise_std`` and masking of a ``mask_prob`` fraction of its values) and the network learns to
  reconstruct the clean vector through a ``code_dim`` bottleneck (mean squared error).
- **SWAE** (Kolouri et al. 2018): reconstruction error plus ``λ`` (``swd_weight``) times the sliced
  Wasserstein distance between the batch's codes and as many samples of a prior (a standard Gaussian
  by default, or uniform on the unit sphere), estimated with ``swd_projections`` random projections
  (:func:`sliced_wasserstein`). The prior shapes the code space without the adversary of an AAE or
  the sampling noise of a VAE.

The defaults (DAE: noise 0.2, masking 0.5; SWAE: Gaussian prior, λ = 0.3, L = 50; 128-d codes, 512
hidden units) were picked among eight settings by same-artist mAP@10 on ``peopleart_artists``
(``benchmarks/bench_retrieval.py``; ``rasta_wikipaintings_small`` is the held-out check). A strong
pull to the sphere prior (λ = 10) spreads the codes too evenly for retrieval (mAP@10 0.47 against
0.52 for λ = 0.3 with the Gaussian prior).

Codes are L2-normalised for search (cosine similarity). A trained encoder is saved as a folder
(:func:`save_autoencoder`)::

    MODEL/config.json          {"model": "painting_autoencoder", "config": {AutoencoderConfig},
                                "sha256": <of encoder.safetensors>, "backbone_checksum": ..., ...}
    MODEL/encoder.safetensors  encoder, decoder and the input standardisation (mean, std)
    MODEL/backbone.safetensors only for a backbone other than the stock pretrained one

and becomes an :class:`~artlens.paintings.embedding.Embedder` through the registry: the names
``"dae"`` and ``"swae"`` (kind checked) and ``"autoencoder"`` (any kind) take ``model=FOLDER``
(a run directory holding ``model/`` works too). The index records ``{"name": "swae", "config":
{"model": "/abs/MODEL"}, "checksum": <sha256 of the weights>}``, from which
:func:`~artlens.paintings.embedders.embedder_from_record` rebuilds the same embedder.

Importing this module does not import torch; the network classes are built on first use.

Example:
    >>> from artlens.paintings.embedders import create_embedder  # doctest: +SKIP
    >>> emb = create_embedder("swae", model="runs/swae/model")  # doctest: +SKIP
    >>> emb.embed_paths(["painting.jpg"]).vectors.shape  # doctest: +SKIP
    (1, 128)

References:
    P. Vincent, H. Larochelle, Y. Bengio, P.-A. Manzagol, "Extracting and composing robust features
    with denoising autoencoders", ICML 2008.
    S. Kolouri, P. E. Pope, C. E. Martin, G. K. Rohde, "Sliced-Wasserstein autoencoder: an
    embarrassingly simple generative model", arXiv:1804.01947 (2018); ICLR 2019 as "Sliced
    Wasserstein auto-encoders".
    I. Gatti, "art-deep-learning" (2018): autoencoder codes for artwork retrieval (the seed project).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np

from artlens.errors import InputNotFoundError, InvalidParameterError, UnreadableInputError
from artlens.paintings.embedders import register_embedder
from artlens.paintings.embedding import EmbedBatch, l2_normalise

__all__ = [
    "KINDS",
    "PRIORS",
    "AutoencoderConfig",
    "AutoencoderEmbedder",
    "encode_vectors",
    "feature_vectors",
    "load_autoencoder",
    "make_autoencoder",
    "model_folder",
    "sample_prior",
    "save_autoencoder",
    "sliced_wasserstein",
]

Kind = Literal["dae", "swae"]
KINDS = ("dae", "swae")
PRIORS = ("sphere", "gaussian")
WEIGHTS = "encoder.safetensors"
BACKBONE_WEIGHTS = "backbone.safetensors"
CONFIG = "config.json"
MODEL_TAG = "painting_autoencoder"


@dataclass
class AutoencoderConfig:
    """Everything that rebuilds an autoencoder and the features it reads.

    Attributes:
        kind: ``"dae"`` or ``"swae"``.
        in_dim: length of the input feature vector (backbone features × 2 with patches).
        code_dim: length of the code (the search vector).
        hidden: width of the hidden layer of encoder and decoder.
        noise_std: DAE: standard deviation of the Gaussian noise added to the standardised input.
        mask_prob: DAE: fraction of input values set to zero (masking noise).
        prior: SWAE: ``"sphere"`` (uniform on the unit sphere of R^code_dim) or ``"gaussian"`` (N(0, I)).
        swd_weight: SWAE: λ, weight of the sliced Wasserstein term.
        swd_projections: SWAE: L, random projections per estimate.
        backbone: timm name of the frozen backbone.
        backbone_checkpoint: ``.safetensors`` backbone weights (relative paths are relative to the
            model folder); ``None`` for the stock pretrained weights.
        pretrained_backbone: ``False`` only for tests with random backbones (not reproducible: such
            models are saved with their backbone weights).
        n_patches: full-resolution patches per image (0: global view only).
        max_side: long side (px) images are reduced to before patches are cut.
    """

    kind: Kind = "dae"
    in_dim: int = 2560
    code_dim: int = 128
    hidden: int = 512
    noise_std: float = 0.2
    mask_prob: float = 0.5
    prior: str = "gaussian"
    swd_weight: float = 0.3
    swd_projections: int = 50
    backbone: str = "tf_efficientnet_lite0"
    backbone_checkpoint: str | None = None
    pretrained_backbone: bool = True
    n_patches: int = 4
    max_side: int = 1024

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidParameterError(f"autoencoder kind {self.kind!r}: use one of {', '.join(KINDS)}")
        if self.prior not in PRIORS:
            raise InvalidParameterError(f"prior {self.prior!r}: use one of {', '.join(PRIORS)}")
        if min(self.in_dim, self.code_dim, self.hidden, self.swd_projections) < 1:
            raise InvalidParameterError("in_dim, code_dim, hidden and swd_projections must be at least 1")
        if not (0 <= self.mask_prob < 1 and self.noise_std >= 0 and self.swd_weight >= 0):
            raise InvalidParameterError("need 0 <= mask_prob < 1, noise_std >= 0 and swd_weight >= 0")
        if self.n_patches < 0:
            raise InvalidParameterError(f"n_patches {self.n_patches}: need >= 0")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AutoencoderConfig:
        """Config from a dict (unknown keys are ignored, so newer files stay readable)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# --------------------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------------------


def sliced_wasserstein(x: Any, y: Any, n_projections: int = 50, *, p: int = 2, projections: Any = None,
                       generator: Any = None) -> Any:
    """Monte-Carlo sliced Wasserstein distance between two equal-sized point sets, to the power ``p``.

    Both sets are projected onto ``L`` random unit directions θ_l; in one dimension the optimal
    transport pairs sorted values, so

    ``SW_p^p(x, y) ≈ (1 / L) Σ_l (1 / n) Σ_i |sort(x θ_l)_i − sort(y θ_l)_i|^p``.

    Identical sets give 0; a set shifted by a vector ``t`` gives ``(1/L) Σ_l |θ_l · t|^p`` (``|t|^p``
    in one dimension, ``|t|² / d`` on average over random directions in d dimensions, p = 2).

    Args:
        x, y: ``(n, d)`` tensors (or arrays) of the same shape: the batch's codes and prior samples.
        n_projections: ``L``, directions drawn uniformly on the unit sphere (ignored with ``projections``).
        p: order of the distance (2 in Kolouri et al.'s SWAE).
        projections: ``(L, d)`` directions to use instead of random ones (normalised here).
        generator: ``torch.Generator`` for reproducible directions.

    Returns:
        A scalar tensor, ``SW_p^p`` (differentiable in ``x`` and ``y``).

    Raises:
        InvalidParameterError: shapes differ or are not 2-D, or ``p`` < 1.

    Example:
        >>> import torch
        >>> x = torch.tensor([[0.0], [1.0], [5.0]])
        >>> float(sliced_wasserstein(x, x + 3.0, projections=torch.ones(1, 1)))
        9.0

    References:
        S. Kolouri, P. E. Pope, C. E. Martin, G. K. Rohde, "Sliced-Wasserstein autoencoder", 2018, eq. 8.
    """
    import torch

    x = torch.as_tensor(x)
    y = torch.as_tensor(y, dtype=x.dtype, device=x.device)
    if x.ndim != 2 or x.shape != y.shape:
        raise InvalidParameterError(f"need two (n, d) sets of the same shape, got {tuple(x.shape)} and "
                                    f"{tuple(y.shape)}")
    if p < 1:
        raise InvalidParameterError(f"p = {p}: need at least 1")
    d = x.shape[1]
    if projections is None:
        theta = torch.randn(int(n_projections), d, generator=generator, dtype=x.dtype,
                            device="cpu" if generator is not None else x.device).to(x.device)
    else:
        theta = torch.as_tensor(projections, dtype=x.dtype, device=x.device).reshape(-1, d)
    theta = theta / theta.norm(dim=1, keepdim=True).clamp_min(1e-12)
    px = torch.sort(x @ theta.T, dim=0).values
    py = torch.sort(y @ theta.T, dim=0).values
    return (px - py).abs().pow(p).mean()


def sample_prior(prior: str, n: int, dim: int, *, generator: Any = None, device: Any = None) -> Any:
    """``n`` samples of an SWAE prior in R^dim: ``"sphere"`` uniform on the unit sphere (normalised
    Gaussians), ``"gaussian"`` standard normal. Returns an ``(n, dim)`` float32 tensor."""
    import torch

    z = torch.randn(n, dim, generator=generator)
    if prior == "sphere":
        z = z / z.norm(dim=1, keepdim=True).clamp_min(1e-12)
    elif prior != "gaussian":
        raise InvalidParameterError(f"prior {prior!r}: use one of {', '.join(PRIORS)}")
    return z if device is None else z.to(device)


# --------------------------------------------------------------------------------------------------
# The network (artlens.models.autoencoders, imported lazily so that importing this module does not import torch)
# --------------------------------------------------------------------------------------------------


def _network_class() -> type:
    """:class:`artlens.models.autoencoders.FeatureAutoencoder` (imported on first use: importing this
    module does not import torch)."""
    from artlens.models.autoencoders import FeatureAutoencoder

    return FeatureAutoencoder


def __getattr__(name: str) -> Any:
    if name == "FeatureAutoencoder":
        return _network_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_autoencoder(config: AutoencoderConfig) -> Any:
    """A fresh :class:`FeatureAutoencoder` (``torch.nn.Module``) for ``config``."""
    return _network_class()(config)


def feature_vectors(global_: np.ndarray, patches: np.ndarray) -> np.ndarray:
    """The autoencoders' input: multi-crop features combined as for search,
    ``(n, D), (n, P, D) → (n, 2D)`` float32 (``(n, D)`` without patches)."""
    from artlens.paintings.features import combine_views

    return np.ascontiguousarray(combine_views(global_, patches), dtype=np.float32)


def encode_vectors(model: Any, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """L2-normalised codes ``(n, code_dim)`` float32 of input feature vectors ``(n, in_dim)``."""
    import torch

    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != model.config.in_dim:
        raise InvalidParameterError(f"feature vectors of shape {x.shape}: the autoencoder needs "
                                    f"(n, {model.config.in_dim})")
    model.eval()
    out = []
    with torch.inference_mode():
        for s in range(0, len(x), batch_size):
            out.append(model.encode(torch.from_numpy(x[s:s + batch_size])).float().numpy())
    z = np.concatenate(out) if out else np.zeros((0, model.config.code_dim), np.float32)
    return l2_normalise(z)


# --------------------------------------------------------------------------------------------------
# Saving and loading
# --------------------------------------------------------------------------------------------------


def save_autoencoder(model: Any, folder: str | os.PathLike[str], *, extra: dict[str, Any] | None = None,
                     backbone: Any = None, backbone_checksum: str | None = None) -> Path:
    """Write ``folder/encoder.safetensors`` and ``folder/config.json`` (never a pickle).

    Args:
        model: a trained :class:`FeatureAutoencoder` (its ``config`` is saved).
        folder: output folder (created).
        extra: more JSON-ready entries for ``config.json`` (training data, metrics, ...).
        backbone: backbone module whose weights are saved as ``backbone.safetensors`` (for a backbone
            that is not the stock pretrained one: random test backbones, fine-tuned ones).
        backbone_checksum: checksum of the stock backbone weights the features came from (checked
            when the encoder is loaded).

    Returns:
        The folder.
    """
    from artlens import __version__
    from artlens.models.checkpoint import save_weights
    from artlens.paintings.features import backbone_file

    config = AutoencoderConfig(**asdict(model.config))
    files: dict[str, Any] = {}
    backbone_sha = None
    if backbone is not None:
        files[BACKBONE_WEIGHTS], backbone_sha = backbone_file(backbone)
        config.backbone_checkpoint, config.pretrained_backbone = BACKBONE_WEIGHTS, True
        backbone_checksum = backbone_sha
    doc: dict[str, Any] = {"model": MODEL_TAG, "config": asdict(config), "sha256": "",
                           "backbone_checksum": backbone_checksum, "artlens_version": __version__, **(extra or {})}
    if backbone_sha is not None:
        doc["backbone_sha256"] = backbone_sha
    return save_weights(folder, model, doc, weights_name=WEIGHTS, extra_files=files,
                        metadata={"artlens_model": f"{MODEL_TAG}:{config.kind}"}, json_default=str)


def model_folder(path: str | os.PathLike[str]) -> Path:
    """The folder holding ``config.json`` and ``encoder.safetensors``: ``path`` itself or ``path/model``
    (a training run directory).

    Raises:
        InputNotFoundError: neither holds an autoencoder.
    """
    p = Path(path).expanduser()
    for folder in (p, p / "model"):
        if (folder / CONFIG).is_file() and (folder / WEIGHTS).is_file():
            return Path(os.path.abspath(folder))
    if not p.exists():
        raise InputNotFoundError(f"{p}: no such autoencoder folder")
    raise InputNotFoundError(f"{p}: not an autoencoder (needs {WEIGHTS} and {CONFIG}, or a run's model/ folder)")


def load_autoencoder(path: str | os.PathLike[str]) -> tuple[Any, dict[str, Any]]:
    """A saved autoencoder (in eval mode) and its ``config.json`` document.

    The backbone checkpoint named in the config is made absolute (relative to the folder).

    Raises:
        InputNotFoundError: not an autoencoder folder.
        UnreadableInputError: malformed config, weights changed since saving (checksum), or weights
            that do not fit the config.
    """
    from artlens.models.checkpoint import load_weights
    from artlens.paintings.features import check_backbone_file

    folder = model_folder(path)
    try:
        doc = json.loads((folder / CONFIG).read_text())
        if doc.get("model") != MODEL_TAG:
            raise ValueError(f"not a {MODEL_TAG} (model = {doc.get('model')!r})")
        config = AutoencoderConfig.from_dict(doc["config"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise UnreadableInputError(f"{folder / CONFIG}: malformed autoencoder config ({exc})") from None
    state, checked = load_weights(folder, weights_name=WEIGHTS, what="autoencoder")  # checks every checksum
    digest = checked["sha256"]
    check_backbone_file(folder, doc, config.backbone_checkpoint)
    if config.backbone_checkpoint and not os.path.isabs(config.backbone_checkpoint):
        config.backbone_checkpoint = str(folder / config.backbone_checkpoint)
    model = make_autoencoder(config)
    try:
        model.load_state_dict(state, strict=True)
    except Exception as exc:  # noqa: BLE001 - safetensors and torch raise several kinds
        raise UnreadableInputError(f"{folder / WEIGHTS}: weights do not fit this autoencoder "
                                   f"({str(exc).splitlines()[0][:200]})") from None
    doc["sha256"] = digest
    doc["folder"] = str(folder)
    return model.eval(), doc


# --------------------------------------------------------------------------------------------------
# The embedder
# --------------------------------------------------------------------------------------------------


class AutoencoderEmbedder:
    """:class:`~artlens.paintings.embedding.Embedder` giving a trained autoencoder's L2-normalised codes.

    Images go through the frozen backbone (multi-crop, as in training), then the encoder.

    Args:
        model: the saved autoencoder folder (or a run directory holding ``model/``).
        kind: expected kind (``"dae"`` / ``"swae"``); ``None`` accepts either.
        batch_size: images per backbone pass.
        workers: image decoding threads.
        device: torch device of the backbone.

    Attributes:
        name: the autoencoder's kind, ``"dae"`` or ``"swae"``.
        dim: ``code_dim``.
        checksum: SHA-256 of ``encoder.safetensors``.
        config: ``{"model": absolute folder}`` (what rebuilds it through the registry).

    Raises:
        InputNotFoundError, UnreadableInputError: see :func:`load_autoencoder`.
        InvalidParameterError: the folder holds another kind than ``kind``.
    """

    def __init__(self, model: str | os.PathLike[str], *, kind: str | None = None, batch_size: int = 16,
                 workers: int = 2, device: str = "cpu") -> None:
        self.autoencoder, self.document = load_autoencoder(model)
        cfg: AutoencoderConfig = self.autoencoder.config
        if kind is not None and kind != cfg.kind:
            raise InvalidParameterError(f"{self.document['folder']} holds a {cfg.kind} autoencoder, not a {kind}; "
                                        f"use the embedder name {cfg.kind!r}")
        self.ae_config = cfg
        self.name: str = cfg.kind
        self.dim = int(cfg.code_dim)
        self.checksum: str | None = self.document["sha256"]
        self.config: dict[str, Any] = {"model": self.document["folder"]}
        self._settings: dict[str, Any] = {"batch_size": int(batch_size), "workers": int(workers), "device": device}
        self._extractor: Any = None

    def __repr__(self) -> str:
        return f"AutoencoderEmbedder({self.name!r}, model={self.config['model']!r}, dim={self.dim})"

    @property
    def extractor(self) -> Any:
        """The :class:`~artlens.paintings.features.FeatureExtractor` of the training features (built
        on first use; its backbone checksum must be the one the encoder was trained on)."""
        if self._extractor is None:
            from artlens.paintings.features import FeatureExtractor

            cfg = self.ae_config
            given: dict[str, Any] = {}
            if not cfg.pretrained_backbone and not cfg.backbone_checkpoint:
                from artlens.models.backbones import create_backbone

                given["model"], given["preprocess"] = create_backbone(cfg.backbone, pretrained=False)
            fx = FeatureExtractor(cfg.backbone, checkpoint=cfg.backbone_checkpoint, n_patches=cfg.n_patches,
                                  max_side=cfg.max_side, **self._settings, **given)
            want = self.document.get("backbone_checksum")
            if want and fx.checksum and want != fx.checksum:
                raise InvalidParameterError(
                    f"{self.config['model']}: the autoencoder was trained on features of backbone weights "
                    f"{want[:12]}…, the installed ones are {fx.checksum[:12]}…; retrain it")
            if fx.dim * (2 if cfg.n_patches else 1) != cfg.in_dim:
                raise UnreadableInputError(f"{self.config['model']}: backbone gives {fx.dim}-d features, the "
                                           f"autoencoder expects {cfg.in_dim}-d input")
            self._extractor = fx
        return self._extractor

    def encode_features(self, global_: np.ndarray, patches: np.ndarray) -> np.ndarray:
        """Codes ``(n, code_dim)`` of cached backbone features (global ``(n, D)``, patches ``(n, P, D)``)."""
        return encode_vectors(self.autoencoder, feature_vectors(global_, patches))

    def embed_paths(self, paths: Sequence[str | os.PathLike[str]], progress: Any = None) -> EmbedBatch:
        """Embed image files; unreadable ones go to ``failures`` with a one-line reason."""
        f = self.extractor.extract(paths, progress=progress)
        if not f.paths:
            return EmbedBatch([], np.zeros((0, self.dim), np.float32), f.failures)
        return EmbedBatch(f.paths, self.encode_features(f.global_, f.patches), f.failures)


@register_embedder("autoencoder")
def autoencoder_embedder(model: str | os.PathLike[str], kind: str | None = None,
                         **settings: Any) -> AutoencoderEmbedder:
    """Factory of :class:`AutoencoderEmbedder` for a saved DAE or SWAE (``model=FOLDER``)."""
    return AutoencoderEmbedder(model, kind=kind, **settings)


@register_embedder("dae")
def dae_embedder(model: str | os.PathLike[str], **settings: Any) -> AutoencoderEmbedder:
    """Factory of a denoising-autoencoder :class:`AutoencoderEmbedder` (``model=FOLDER``)."""
    return AutoencoderEmbedder(model, kind="dae", **settings)


@register_embedder("swae")
def swae_embedder(model: str | os.PathLike[str], **settings: Any) -> AutoencoderEmbedder:
    """Factory of a sliced-Wasserstein-autoencoder :class:`AutoencoderEmbedder` (``model=FOLDER``)."""
    return AutoencoderEmbedder(model, kind="swae", **settings)
