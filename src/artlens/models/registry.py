"""The model registry: builders by name. A leaf: it imports no model family.

A model builder is a function returning an ``nn.Module``; ``@register_model`` adds it under its
function name. The families register in :mod:`artlens.models.phase`, :mod:`~artlens.models.regression`,
:mod:`~artlens.models.siamese`, :mod:`~artlens.models.yarn`, :mod:`~artlens.models.graph`,
:mod:`~artlens.models.heads` and :mod:`~artlens.models.autoencoders` (all imported by
:mod:`artlens.models.builtin`); users build models with :func:`artlens.models.create_model`
(:mod:`artlens.models.factory`).

``artlens.models`` as a whole is a leaf too: it imports nothing from the domain packages (``canvas``,
``paintings``, ``beneath``, ``train``, ``cli``), and its modules import each other one way only
(families → registry; checkpoint → builtin → families; factory → checkpoint, pretrained).
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


def registered(pattern: str = "*") -> list[str]:
    """Names registered so far that match a shell-style ``pattern`` (the built-in families register when
    :mod:`artlens.models.builtin` is imported; :func:`artlens.models.list_models` does that)."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def build(name: str, **kwargs: Any) -> Any:
    """Call the builder registered as ``name``.

    Raises:
        InvalidParameterError: no such model; the message lists the registered ones.
    """
    if name not in _REGISTRY:
        raise InvalidParameterError(f"unknown model {name!r}; valid models: {', '.join(registered())}")
    return _REGISTRY[name](**kwargs)
