"""Weights shipped inside artlens, named by tags: ``"<architecture>.<tag>"``, as in timm.

The weights stay in the package folders they were always in (``artlens/canvas/threads/weights/``,
``artlens/canvas/fabric_weights/``, ``artlens/beneath/weights/``, ``artlens/paintings/weights/``);
this module is the one place that knows where, found with :mod:`importlib.resources` (never the
current directory). :func:`pretrained_path` always returns the folder of an installed tag or raises:
an unknown name is an :class:`~artlens.errors.InvalidParameterError` that lists the valid tags.

=====================================  ===========================================================
tag                                    weights
=====================================  ===========================================================
``weavephase.threads_phase``           weave-phase CNN, the default thread counter
``regvgg_small.threads_regvgg``        regVGG thread-density regressor (Delgado et al. 2025)
``yarn_logistic.fabric_default``       yarn-statistics same-roll model, the default fabric model
``siamese_fabric.siamese_v1``          Siamese fabric network (Murillo-Fuentes et al. 2025)
``beneath_gat.beneath_default``        Siamese GAT encoder of ``artlens beneath compare``
``beneath_gcn.beneath_gcn_default``    Siamese GCN encoder (``--method gcn``)
``painting_verifier.verifier_default`` the default painting verifier (its own loader)
=====================================  ===========================================================

A tag alone (the folder name, e.g. ``"threads_phase"``) names the same weights; the model-loading
functions accept either wherever they take a model folder (:func:`resolve_model_folder`).
Registry models load with ``create_model("weavephase.threads_phase", pretrained=True)``; the verifier
is not a registry checkpoint and loads with :func:`artlens.paintings.verify.load_verifier`.

>>> list_pretrained("beneath*")
['beneath_gat.beneath_default', 'beneath_gcn.beneath_gcn_default']
>>> folder = pretrained_path("weavephase.threads_phase")
>>> folder.name, (folder / "model.safetensors").is_file()
('threads_phase', True)
>>> pretrained_path("threads_phase") == folder
True
>>> pretrained_path("weavephase.threads_default")  # doctest: +ELLIPSIS
Traceback (most recent call last):
    ...
artlens.errors.InvalidParameterError: unknown pretrained weights 'weavephase.threads_default'; valid tags: ...
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from artlens.errors import InputNotFoundError, InvalidParameterError

__all__ = ["Pretrained", "default_tag", "is_pretrained", "list_pretrained", "pretrained_info", "pretrained_path",
           "resolve_model_folder"]


@dataclass(frozen=True)
class Pretrained:
    """One set of shipped weights.

    Attributes:
        architecture: the model it holds (a registered model name, or another family's own name).
        tag: the weights' name, also the folder's name.
        folder: the folder, relative to the ``artlens`` package.
        family: ``"threads"``, ``"fabric"``, ``"beneath"`` or ``"verifier"``.
        weights: the weights file inside the folder.
        loader: the function that loads it (dotted path, for messages and docs).
    """

    architecture: str
    tag: str
    folder: str
    family: str
    weights: str = "model.safetensors"
    loader: str = "artlens.models.create_model(..., pretrained=True)"

    @property
    def name(self) -> str:
        """``"<architecture>.<tag>"``."""
        return f"{self.architecture}.{self.tag}"


_PRETRAINED = (
    Pretrained("weavephase", "threads_phase", "canvas/threads/weights/threads_phase", "threads"),
    Pretrained("regvgg_small", "threads_regvgg", "canvas/threads/weights/threads_regvgg", "threads"),
    Pretrained("yarn_logistic", "fabric_default", "canvas/fabric_weights/fabric_default", "fabric"),
    Pretrained("siamese_fabric", "siamese_v1", "canvas/fabric_weights/siamese_v1", "fabric"),
    Pretrained("beneath_gat", "beneath_default", "beneath/weights/beneath_default", "beneath"),
    Pretrained("beneath_gcn", "beneath_gcn_default", "beneath/weights/beneath_gcn_default", "beneath"),
    Pretrained("painting_verifier", "verifier_default", "paintings/weights/verifier_default", "verifier",
               weights="head.safetensors", loader="artlens.paintings.verify.load_verifier"),
)
_BY_NAME = {p.name: p for p in _PRETRAINED}
_BY_TAG = {p.tag: p for p in _PRETRAINED}


def list_pretrained(pattern: str = "*", *, family: str | None = None) -> list[str]:
    """Names (``"<architecture>.<tag>"``) of the shipped weights matching a shell-style ``pattern``,
    optionally of one ``family``."""
    return sorted(p.name for p in _PRETRAINED
                  if fnmatch.fnmatch(p.name, pattern) and (family is None or p.family == family))


def is_pretrained(name: str, *, family: str | None = None) -> bool:
    """Whether ``name`` names shipped weights (``"<architecture>.<tag>"`` or a bare tag), of ``family``
    when given. Says nothing about whether they are installed (:func:`pretrained_path` checks that)."""
    entry = _BY_NAME.get(name) or _BY_TAG.get(name)
    return entry is not None and (family is None or entry.family == family)


def pretrained_info(name: str) -> Pretrained:
    """The entry of ``"<architecture>.<tag>"`` or of a bare tag.

    Raises:
        InvalidParameterError: no such weights; the message lists the valid tags.
    """
    entry = _BY_NAME.get(name) or _BY_TAG.get(name)
    if entry is None:
        raise InvalidParameterError(f"unknown pretrained weights {name!r}; valid tags: {', '.join(list_pretrained())}")
    return entry


def default_tag(architecture: str) -> str:
    """The first shipped weights of ``architecture`` (what ``create_model(architecture, pretrained=True)``
    loads).

    Raises:
        InvalidParameterError: none shipped for this architecture.
    """
    for p in _PRETRAINED:
        if p.architecture == architecture:
            return p.name
    raise InvalidParameterError(f"no pretrained weights are shipped for {architecture!r}; "
                                f"valid tags: {', '.join(list_pretrained())}")


def pretrained_path(name: str) -> Path:
    """Folder of shipped weights given as ``"<architecture>.<tag>"`` or a bare tag.

    Raises:
        InvalidParameterError: no such tag (the message lists the valid ones).
        InputNotFoundError: a known tag whose files are not installed.
    """
    entry = pretrained_info(name)
    folder = Path(str(resources.files("artlens").joinpath(*entry.folder.split("/"))))
    if not (folder / entry.weights).is_file() or not (folder / "config.json").is_file():
        raise InputNotFoundError(f"pretrained weights {entry.name!r} are not installed "
                                 f"(no {entry.weights} and config.json in {folder})")
    return folder


def resolve_model_folder(path: str | os.PathLike[str], *, what: str = "model", family: str | None = None) -> Path:
    """A model folder given as a path or as the name of shipped weights: a path that exists wins,
    otherwise the name is looked up with :func:`pretrained_path`.

    Args:
        path: a folder (or a file in it; returned as given), ``"<architecture>.<tag>"`` or a bare tag.
        what: what the folder should hold, for the error message (``"fabric model"``, ...).
        family: only shipped weights of this family are looked up, and listed in the error message
            (all by default).

    Raises:
        InputNotFoundError: neither an existing path nor shipped weights (the message lists the
            shipped models of ``family``).
    """
    p = Path(path).expanduser()
    if p.exists():
        return p
    if is_pretrained(str(path), family=family):
        return pretrained_path(str(path))
    shipped = ", ".join(list_pretrained(family=family)) or "none"
    raise InputNotFoundError(f"{path}: no such {what} folder (shipped models: {shipped})")
