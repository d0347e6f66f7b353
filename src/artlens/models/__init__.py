"""One registry for every model family (``create_model``, ``list_models``), the weights shipped with
artlens as named tags (``list_pretrained``, ``pretrained_path``), losses and the one save/load module
(safetensors + JSON config, :mod:`artlens.models.checkpoint`). Importing this package imports torch;
the spectral thread counter never does. A leaf: it imports no domain package (canvas, paintings,
beneath, train, cli)."""

from artlens.models.checkpoint import load_checkpoint, load_weights, save_checkpoint, save_weights
from artlens.models.factory import create_model, list_models
from artlens.models.pretrained import list_pretrained, pretrained_path
from artlens.models.registry import register_model

__all__ = ["create_model", "list_models", "list_pretrained", "load_checkpoint", "load_weights", "pretrained_path",
           "register_model", "save_checkpoint", "save_weights"]
