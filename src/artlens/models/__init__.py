"""One registry for every model family (``create_model``, ``list_models``), losses and checkpoint I/O
(safetensors + JSON config). Importing this package imports torch; the spectral thread counter
never does."""

from artlens.models.checkpoint import load_checkpoint, save_checkpoint
from artlens.models.registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "load_checkpoint", "register_model", "save_checkpoint"]
