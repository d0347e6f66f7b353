"""Where inference runs: ``device="auto"|"cpu"|"cuda"|"cuda:N"`` (the CLI's ``--device``).

:func:`resolve_device` turns the option into a torch device string (``auto`` picks the first CUDA GPU
when torch sees one, else the CPU) and refuses a CUDA device that this machine does not have, with a
one-line message rather than a CUDA traceback. :func:`batch_size_for` picks a batch size for the
device. torch is imported only when a device must be checked, so ``--device cpu`` costs nothing.
"""

from __future__ import annotations

import os
import re
from typing import Any

from artlens.errors import InvalidParameterError

__all__ = ["DEVICE_HELP", "batch_size_for", "check_device_spec", "cuda_available", "is_rank_zero", "move_extractor",
           "place_extractor", "resolve_device"]

DEVICE_HELP = "Where the model runs: auto (a CUDA GPU when present, else the CPU), cpu, cuda or cuda:N."

_SPEC = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def cuda_available() -> tuple[bool, int]:
    """``(available, device count)`` as torch sees it; ``(False, 0)`` without torch."""
    try:
        import torch
    except ImportError:
        return False, 0
    ok = bool(torch.cuda.is_available())
    return ok, (torch.cuda.device_count() if ok else 0)


def check_device_spec(spec: str | None) -> str:
    """The spec, lower-cased, when it is well formed (no torch import: for commands that may not need a model)."""
    spec = (spec or "auto").strip().lower()
    if not _SPEC.match(spec):
        raise InvalidParameterError(f"device must be auto, cpu, cuda or cuda:N, got {spec!r}", param="device")
    return spec


def resolve_device(spec: str | None = "auto") -> str:
    """The torch device string for ``spec``: ``"cpu"`` or ``"cuda:N"``.

    Raises:
        InvalidParameterError: an unknown spec, or a CUDA device that is not there.

    Example:
        >>> resolve_device("cpu")
        'cpu'
    """
    spec = check_device_spec(spec)
    if spec == "cpu":
        return "cpu"
    ok, count = cuda_available()
    if spec == "auto":
        return "cuda:0" if ok else "cpu"
    index = int(spec.split(":")[1]) if ":" in spec else 0
    if not ok:
        raise InvalidParameterError(f"device {spec}: no CUDA GPU is available on this machine "
                                    "(torch.cuda.is_available() is False); use cpu or auto", param="device")
    if index >= count:
        raise InvalidParameterError(f"device {spec}: this machine has {count} CUDA GPU(s), "
                                    f"cuda:0 to cuda:{count - 1}", param="device")
    return f"cuda:{index}"


def batch_size_for(device: str, cpu: int, cuda: int) -> int:
    """``cuda`` on a GPU, ``cpu`` on the CPU: a GPU wants larger batches, a CPU gains little from them.

    Example:
        >>> batch_size_for("cpu", 16, 128), batch_size_for("cuda:0", 16, 128)
        (16, 128)
    """
    return cuda if device.startswith("cuda") else cpu


def place_extractor(owner: object, device: str, cuda_batch: int = 64) -> bool:
    """Move the frozen backbone of ``owner.extractor`` (a :class:`~artlens.paintings.features.FeatureExtractor`,
    as a verifier or a CNN embedder holds) to ``device``, with a batch size for it.

    On the CPU nothing changes (the extractor is built there). Returns whether it moved anything.
    """
    return move_extractor(getattr(owner, "extractor", None), device, cuda_batch)


def move_extractor(ex: Any, device: str, cuda_batch: int = 64) -> bool:
    """Move a :class:`~artlens.paintings.features.FeatureExtractor`'s backbone to ``device`` (a torch
    device string from :func:`resolve_device`), with a batch size for it; on the CPU nothing changes.
    Returns whether it moved anything."""
    if device == "cpu" or ex is None or not hasattr(ex, "model") or not hasattr(ex, "device"):
        return False
    ex.model = ex.model.to(device)
    ex.device = device
    ex.batch_size = batch_size_for(device, ex.batch_size, max(ex.batch_size, cuda_batch))
    return True


def is_rank_zero() -> bool:
    """Whether this process is the first (or only) process of a multi-process (DDP) run.

    With ``devices > 1`` and ``strategy="ddp"`` Lightning starts the command again for every further
    device with ``LOCAL_RANK`` (and ``NODE_RANK``, or ``RANK`` under a cluster launcher) set, so all
    that a command does before ``Trainer.fit`` runs in every process. Only rank 0 writes the run
    folder, the model and the command's output; the others train and return. Read from the
    environment, so it can be asked before a ``Trainer`` exists (after ``fit``,
    ``trainer.is_global_zero`` says the same).
    """
    if os.environ.get("RANK") is not None:
        return int(os.environ["RANK"]) == 0
    return int(os.environ.get("LOCAL_RANK") or 0) == 0 and int(os.environ.get("NODE_RANK") or 0) == 0
