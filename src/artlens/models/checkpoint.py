"""Saving and loading model folders: safetensors weights + a JSON config, atomic, with checksums.

Every model artlens writes is a folder: one weights file (``model.safetensors`` for registry models;
other families name theirs, e.g. ``head.safetensors``), optional extra files (a fine-tuned
``backbone.safetensors``, a bank ``bank.npz``, ...) and ``config.json``. Never a pickle.

**Writing** (:func:`save_weights`): each file is written to a temporary file in the same folder and
moved into place with :func:`os.replace`, so a reader never sees half a file; ``config.json`` is
written last, so a folder with a config is complete. The config records the SHA-256 of every file
written: ``"sha256"`` for the weights file (the key older folders already have) and ``"files":
{name: sha256}`` for all of them, the weights included.

**Reading** (:func:`load_weights`, :func:`read_document`, :func:`verify_files`): a missing folder or
file is an :class:`~artlens.errors.InputNotFoundError`; a malformed config, a changed file (checksum)
or unreadable weights an :class:`~artlens.errors.UnreadableInputError`. Folders written before the
``"files"`` key existed still load (only ``"sha256"`` is checked, when present).

**Registry models** (:func:`save_checkpoint` / :func:`load_checkpoint` / :func:`read_config`):
``config.json`` holds ``{"model": name, "kwargs": {...}, "sha256": ..., "files": {...}, ...}`` plus
anything the caller adds (training data, metrics, px/cm): enough to rebuild the model with
:func:`artlens.models.create_model` and to record which weights produced a result.

Other save functions build on the general API, for example a head with a fine-tuned backbone::

    save_weights(folder, head, {"model": "painting_classifier", "config": asdict(cfg)},
                 weights_name="head.safetensors",
                 extra_files={"backbone.safetensors": backbone.state_dict()})
    tensors, doc = load_weights(folder, weights_name="head.safetensors")  # every checksum verified

>>> import tempfile, torch
>>> folder = save_weights(tempfile.mkdtemp(), {"w": torch.ones(2)}, {"model": "demo"},
...                       extra_files={"notes.txt": "hello\\n"})
>>> tensors, doc = load_weights(folder)
>>> tensors["w"].tolist(), doc["model"], sorted(doc["files"])
([1.0, 1.0], 'demo', ['model.safetensors', 'notes.txt'])
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from artlens.errors import InputNotFoundError, InvalidParameterError, UnreadableInputError
from artlens.provenance import sha256_file

__all__ = ["CONFIG", "WEIGHTS", "load_checkpoint", "load_weights", "read_config", "read_document",
           "save_checkpoint", "save_weights", "verify_files", "write_atomic"]

WEIGHTS = "model.safetensors"
CONFIG = "config.json"

_UMASK = os.umask(0)  # read the process umask (files get the mode a plain open() would give them)
os.umask(_UMASK)


def write_atomic(path: str | os.PathLike[str], data: bytes | str | Callable[[str], None]) -> str:
    """Write one file atomically and return its SHA-256.

    Args:
        path: destination; its folder must exist.
        data: the bytes (or UTF-8 text) to write, or a function that writes the file at the temporary
            path it is given (e.g. ``lambda p: safetensors.torch.save_file(state, p)``).

    The file is written under a temporary name in the same folder and moved into place with
    :func:`os.replace`; on failure the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if callable(data):
            os.close(fd)
            data(tmp)
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data.encode() if isinstance(data, str) else data)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return sha256_file(path)


def _tensor_dict(tensors: Any) -> tuple[dict[str, Any], str]:
    """``(contiguous CPU tensors, "pt" | "numpy")`` of a module, a state dict or a dict of arrays."""
    import numpy as np

    if hasattr(tensors, "state_dict"):
        tensors = tensors.state_dict()
    if not isinstance(tensors, Mapping):
        raise InvalidParameterError(f"expected a module or a mapping of tensors, got {type(tensors).__name__}")
    if tensors and all(isinstance(v, np.ndarray) for v in tensors.values()):
        return {str(k): np.ascontiguousarray(v) for k, v in tensors.items()}, "numpy"
    import torch

    out = {}
    for k, v in tensors.items():
        t = torch.from_numpy(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v
        if not isinstance(t, torch.Tensor):
            raise InvalidParameterError(f"tensor {k!r} is a {type(v).__name__}, not a tensor or array")
        out[str(k)] = t.detach().cpu().contiguous()
    return out, "pt"


def _safetensors_writer(tensors: Any, metadata: Mapping[str, str] | None) -> Callable[[str], None]:
    state, framework = _tensor_dict(tensors)
    meta = dict(metadata) if metadata else None
    if framework == "numpy":
        from safetensors.numpy import save_file as save_np

        return lambda p: save_np(state, p, metadata=meta)
    from safetensors.torch import save_file

    return lambda p: save_file(state, p, metadata=meta)


def _file_payload(name: str, content: Any) -> bytes | str | Callable[[str], None]:
    import numpy as np

    if isinstance(content, bytes | str):
        return content
    if isinstance(content, np.ndarray):
        buf = io.BytesIO()
        np.save(buf, content, allow_pickle=False)
        return buf.getvalue()
    if hasattr(content, "state_dict") or isinstance(content, Mapping):
        if not name.endswith(".safetensors"):
            raise InvalidParameterError(f"extra file {name!r}: tensors are saved as .safetensors files")
        return _safetensors_writer(content, None)
    raise InvalidParameterError(f"extra file {name!r}: cannot write a {type(content).__name__} "
                                "(give bytes, text, a numpy array or a mapping of tensors)")


def _check_name(name: str) -> None:
    if not name or name != os.path.basename(name) or name in (".", ".."):
        raise InvalidParameterError(f"{name!r}: a model file must be a plain file name inside the folder")


def save_weights(folder: str | os.PathLike[str], tensors: Any, config: Mapping[str, Any], *,
                 weights_name: str = WEIGHTS, extra_files: Mapping[str, Any] | None = None,
                 metadata: Mapping[str, str] | None = None,
                 json_default: Callable[[Any], Any] | None = None) -> Path:
    """Write a model folder: weights, extra files, then ``config.json`` (each one atomically).

    Args:
        folder: the model folder (created if needed).
        tensors: the weights: an ``nn.Module`` (its ``state_dict()``), a dict of torch tensors, or a
            dict of numpy arrays; written as ``folder/weights_name`` (safetensors).
        config: the JSON-ready document to write as ``config.json``. Its ``"sha256"`` (the weights
            file's) and ``"files"`` (``{name: sha256}`` of every file written here) are filled in;
            a ``"sha256"`` key already in ``config`` keeps its place in the file.
        weights_name: file name of the weights.
        extra_files: more files to write beside the weights, by file name: ``bytes`` or ``str`` (written
            as they are), a numpy array (``.npy`` format, no pickle), or a module / dict of tensors
            (safetensors; the name must end in ``.safetensors``).
        metadata: string metadata stored in the weights file's safetensors header.
        json_default: ``default=`` of :func:`json.dumps` for values JSON cannot encode (e.g. ``str``);
            by default they raise ``TypeError``.

    Returns:
        The folder.

    Raises:
        InvalidParameterError: a file name with a path in it, or content that cannot be written.
    """
    folder = Path(folder)
    names = [weights_name, *(extra_files or {})]
    for name in names:
        _check_name(name)
    if CONFIG in names:
        raise InvalidParameterError(f"{CONFIG} is written from `config`, not as a weights or extra file")
    folder.mkdir(parents=True, exist_ok=True)
    payloads = {name: _file_payload(name, content) for name, content in (extra_files or {}).items()}
    files = {weights_name: write_atomic(folder / weights_name, _safetensors_writer(tensors, metadata))}
    for name, payload in payloads.items():
        files[name] = write_atomic(folder / name, payload)
    doc = dict(config)
    doc["sha256"] = files[weights_name]
    doc["files"] = files
    write_atomic(folder / CONFIG, json.dumps(doc, indent=2, default=json_default) + "\n")
    return folder


def read_document(folder: str | os.PathLike[str], what: str = "model") -> dict[str, Any]:
    """The parsed ``folder/config.json`` (a JSON object).

    Args:
        folder: the model folder.
        what: what the folder should hold, for error messages (``"verifier"``, ...).

    Raises:
        InputNotFoundError: no ``config.json`` there.
        UnreadableInputError: not a JSON object.
    """
    path = Path(folder) / CONFIG
    if not path.is_file():
        raise InputNotFoundError(f"{Path(folder)}: not a {what} folder (no {CONFIG})")
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UnreadableInputError(f"{path}: malformed {what} config ({exc})") from None
    if not isinstance(doc, dict):
        raise UnreadableInputError(f"{path}: malformed {what} config (not a JSON object)")
    return doc


def verify_files(folder: str | os.PathLike[str], config: Mapping[str, Any], *,
                 weights_name: str = WEIGHTS) -> str:
    """Check the files of a model folder against the checksums in its config; return the weights'
    SHA-256.

    ``config["sha256"]`` (when present and not empty) must match ``folder/weights_name`` and every
    entry of ``config["files"]`` (when present) must match its file. Old folders without these keys
    pass unchecked.

    Raises:
        InputNotFoundError: the weights file is missing.
        UnreadableInputError: a checksum differs, a listed file is missing, or ``"files"`` is malformed.
    """
    folder = Path(folder)
    weights = folder / weights_name
    if not weights.is_file():
        raise InputNotFoundError(f"{folder}: no {weights_name}")
    digest = sha256_file(weights)
    if config.get("sha256") and config["sha256"] != digest:
        raise UnreadableInputError(f"{weights}: checksum does not match {CONFIG} (file changed?)")
    files = config.get("files") or {}
    if not isinstance(files, Mapping):
        raise UnreadableInputError(f"{folder / CONFIG}: malformed \"files\" entry (not an object)")
    for name, expected in files.items():
        if not isinstance(name, str) or name != os.path.basename(name) or not isinstance(expected, str):
            raise UnreadableInputError(f"{folder / CONFIG}: malformed \"files\" entry {name!r}")
        path = folder / name
        if not path.is_file():
            raise UnreadableInputError(f"{path}: listed in {CONFIG} but missing")
        actual = digest if name == weights_name else sha256_file(path)
        if actual != expected:
            raise UnreadableInputError(f"{path}: checksum does not match {CONFIG} (file changed?)")
    return digest


def load_weights(folder: str | os.PathLike[str], *, weights_name: str = WEIGHTS, device: str = "cpu",
                 framework: str = "pt", what: str = "model") -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a folder written by :func:`save_weights` (or by an older artlens).

    Args:
        folder: the model folder.
        weights_name: file name of the weights.
        device: where torch tensors go (``framework="pt"``).
        framework: ``"pt"`` (torch tensors) or ``"numpy"`` (arrays).
        what: what the folder should hold, for error messages.

    Returns:
        ``(tensors, config)``: the weights by name and the parsed ``config.json``, whose ``"sha256"`` is
        set to the weights file's actual checksum (after every recorded checksum was verified).

    Raises:
        InputNotFoundError: no config or no weights file.
        UnreadableInputError: malformed config, a changed file, or unreadable weights.
    """
    from safetensors import SafetensorError

    folder = Path(folder)
    config = read_document(folder, what)
    digest = verify_files(folder, config, weights_name=weights_name)
    try:
        if framework == "numpy":
            from safetensors.numpy import load_file as load_np

            tensors: dict[str, Any] = load_np(str(folder / weights_name))
        elif framework == "pt":
            from safetensors.torch import load_file

            tensors = load_file(str(folder / weights_name), device=device)
        else:
            raise InvalidParameterError(f"unknown framework {framework!r}; expected 'pt' or 'numpy'")
    except (SafetensorError, OSError) as exc:
        raise UnreadableInputError(f"{folder / weights_name}: unreadable weights ({exc})") from None
    config["sha256"] = digest
    return tensors, config


# -- registry models -----------------------------------------------------------------------------


def save_checkpoint(model: Any, name: str, kwargs: dict[str, Any], folder: str | os.PathLike[str],
                    extra: dict[str, Any] | None = None) -> Path:
    """Write a registry model as ``folder/model.safetensors`` and ``folder/config.json``; returns the
    folder.

    Args:
        model: the model (its ``state_dict()`` is saved).
        name: its registered name (:func:`artlens.models.list_models`).
        kwargs: the builder arguments that rebuild its architecture.
        folder: the checkpoint folder (created).
        extra: more JSON-ready entries for ``config.json``.
    """
    config: dict[str, Any] = {"model": name, "kwargs": kwargs, "sha256": None, **(extra or {})}
    return save_weights(folder, model, config, metadata={"artlens_model": name})


def read_config(path: str | os.PathLike[str]) -> tuple[Path, dict[str, Any]]:
    """Folder and parsed config of a checkpoint given as its folder, its weights or its config file."""
    p = Path(path).expanduser()
    folder = p if p.is_dir() else p.parent
    if not (folder / WEIGHTS).is_file() or not (folder / CONFIG).is_file():
        raise InputNotFoundError(f"{p}: not a model checkpoint (needs {WEIGHTS} and {CONFIG} in one folder)")
    config = read_document(folder, "checkpoint")
    if "model" not in config or "kwargs" not in config:
        raise UnreadableInputError(f"{folder / CONFIG}: malformed checkpoint config (needs \"model\" and \"kwargs\")")
    return folder, config


def load_checkpoint(path: str | os.PathLike[str], map_location: str = "cpu") -> tuple[Any, dict[str, Any]]:
    """Rebuild the model named in ``config.json`` and load its safetensors weights.

    Returns:
        ``(model in eval mode, config)``; every checksum in the config is checked against its file.
    """
    from artlens.models import builtin  # noqa: F401 - registers the built-in families
    from artlens.models.registry import build

    folder, _ = read_config(path)
    state, config = load_weights(folder, device=map_location, what="checkpoint")
    model = build(config["model"], **config["kwargs"])
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # tensor shapes differ from the architecture in config.json
        raise UnreadableInputError(f"{folder / WEIGHTS}: weights do not fit a {config['model']!r} model "
                                   f"({str(exc).splitlines()[0]})") from exc
    if missing or unexpected:
        raise UnreadableInputError(
            f"{folder / WEIGHTS}: weights do not fit a {config['model']!r} model "
            f"(missing {len(missing)}, unexpected {len(unexpected)} tensors)"
        )
    return model.eval(), config
