"""Checkpoints: ``model.safetensors`` + ``config.json`` in one folder. Never a pickle.

``config.json`` holds ``{"model": name, "kwargs": {...}, "sha256": <of model.safetensors>, ...}``
plus anything the caller adds (training data, metrics, px/cm): enough to rebuild the model with
:func:`artlens.models.create_model` and to record which weights produced a result.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from artlens.errors import InputNotFoundError, UnreadableInputError
from artlens.provenance import sha256_file

WEIGHTS = "model.safetensors"
CONFIG = "config.json"


def save_checkpoint(model: Any, name: str, kwargs: dict[str, Any], folder: str | os.PathLike[str],
                    extra: dict[str, Any] | None = None) -> Path:
    """Write ``folder/model.safetensors`` and ``folder/config.json``; returns the folder."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = folder / (WEIGHTS + ".tmp")
    save_file(state, str(tmp), metadata={"artlens_model": name})
    os.replace(tmp, folder / WEIGHTS)
    config = {"model": name, "kwargs": kwargs, "sha256": sha256_file(folder / WEIGHTS)}
    config.update(extra or {})
    (folder / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    return folder


def read_config(path: str | os.PathLike[str]) -> tuple[Path, dict[str, Any]]:
    """Folder and parsed config of a checkpoint given as its folder, its weights or its config file."""
    p = Path(path).expanduser()
    folder = p if p.is_dir() else p.parent
    if not (folder / WEIGHTS).is_file() or not (folder / CONFIG).is_file():
        raise InputNotFoundError(f"{p}: not a model checkpoint (needs {WEIGHTS} and {CONFIG} in one folder)")
    try:
        config = json.loads((folder / CONFIG).read_text())
        config["model"], config["kwargs"]  # noqa: B018 - required keys
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise UnreadableInputError(f"{folder / CONFIG}: malformed checkpoint config ({exc})") from exc
    return folder, config


def load_checkpoint(path: str | os.PathLike[str], map_location: str = "cpu") -> tuple[Any, dict[str, Any]]:
    """Rebuild the model named in ``config.json`` and load its safetensors weights.

    Returns:
        ``(model in eval mode, config)``; ``config["sha256"]`` is checked against the weights file.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from artlens.models.registry import create_model

    folder, config = read_config(path)
    digest = sha256_file(folder / WEIGHTS)
    if config.get("sha256") and config["sha256"] != digest:
        raise UnreadableInputError(f"{folder / WEIGHTS}: checksum does not match config.json (file changed?)")
    model = create_model(config["model"], **config["kwargs"])
    try:
        state = load_file(str(folder / WEIGHTS), device=map_location)
    except (SafetensorError, OSError) as exc:
        raise UnreadableInputError(f"{folder / WEIGHTS}: unreadable weights ({exc})") from exc
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
    config["sha256"] = digest
    return model.eval(), config
