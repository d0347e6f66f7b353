"""One registry for every model family.

>>> from artlens.models import create_model, list_models
>>> list_models("regvgg*")  # doctest: +SKIP
['regvgg', 'regvgg_small', 'regvgg_test']
>>> list_models("siamese*")  # doctest: +SKIP
['siamese_fabric', 'siamese_fabric_test']
>>> model = create_model("regvgg_test")  # doctest: +SKIP

A model builder is a function returning an ``nn.Module``; ``@register_model`` adds it under its
function name. ``create_model(name, checkpoint=PATH)`` rebuilds a model from its JSON config and
loads safetensors weights (see :mod:`artlens.models.checkpoint`). An unknown name fails with the list
of valid ones.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any

from artlens.errors import InvalidParameterError

_REGISTRY: dict[str, Callable[..., Any]] = {}
_FAMILIES: dict[str, str] = {}


def register_model(fn: Callable[..., Any] | None = None, *, family: str = "") -> Any:
    """Decorator: register a model builder under its function name."""

    def wrap(f: Callable[..., Any]) -> Callable[..., Any]:
        if f.__name__ in _REGISTRY:
            raise ValueError(f"model {f.__name__!r} is already registered")
        _REGISTRY[f.__name__] = f
        _FAMILIES[f.__name__] = family
        return f

    return wrap(fn) if fn is not None else wrap


def _ensure_builtin_models() -> None:
    # Importing the modules registers their builders.
    from artlens.beneath import models as _beneath_models  # noqa: F401
    from artlens.models import phase, regression, siamese, yarn  # noqa: F401


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern``."""
    _ensure_builtin_models()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def create_model(name: str, *, checkpoint: str | None = None, **kwargs: Any) -> Any:
    """Build a registered model.

    Args:
        name: registered name (see :func:`list_models`).
        checkpoint: a folder (or its ``model.safetensors``) written by
            :func:`artlens.models.checkpoint.save_checkpoint`; its config's keyword arguments are used
            and the weights loaded. Never unpickles anything.
        **kwargs: builder arguments (e.g. ``backbone="resnet18"`` for ``timm_regressor``).
    """
    _ensure_builtin_models()
    if checkpoint is not None:
        from artlens.models.checkpoint import load_checkpoint

        model, config = load_checkpoint(checkpoint)
        if config["model"] != name:
            raise InvalidParameterError(f"checkpoint {checkpoint} holds a {config['model']!r} model, not {name!r}")
        return model
    if name not in _REGISTRY:
        raise InvalidParameterError(f"unknown model {name!r}; valid models: {', '.join(list_models())}")
    return _REGISTRY[name](**kwargs)
