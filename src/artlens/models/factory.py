"""Building models: ``create_model`` and ``list_models``, over the registry, the shipped weights and
checkpoints.

>>> from artlens.models import create_model, list_models
>>> list_models("regvgg*")
['regvgg', 'regvgg_small', 'regvgg_test']
>>> list_models("siamese*")
['siamese_fabric', 'siamese_fabric_test']
>>> model = create_model("regvgg_test")
>>> net = create_model("weavephase.threads_phase", pretrained=True)  # weights shipped with artlens
>>> type(net).__name__, net.training
('WeavePhaseNet', False)

``create_model(name, checkpoint=PATH)`` rebuilds a model from its JSON config and loads safetensors
weights (see :mod:`artlens.models.checkpoint`); ``create_model("<name>.<tag>", pretrained=True)`` does
the same with weights shipped inside artlens (:mod:`artlens.models.pretrained`). An unknown name fails
with the list of valid ones, an unknown tag with the list of valid tags.
"""

from __future__ import annotations

from typing import Any

from artlens.errors import InvalidParameterError
from artlens.models.registry import build, registered


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern``."""
    from artlens.models import builtin  # noqa: F401 - registers the built-in families

    return registered(pattern)


def create_model(name: str, *, pretrained: bool = False, checkpoint: str | None = None, **kwargs: Any) -> Any:
    """Build a registered model.

    Args:
        name: registered name (see :func:`list_models`), or ``"<name>.<tag>"`` naming shipped weights
            (see :func:`artlens.models.pretrained.list_pretrained`).
        pretrained: load shipped weights: the tag's, or for a bare name its first shipped tag. The
            architecture then comes from the weights' config (no ``kwargs``). Without it a tag only has
            to be valid and the model is built from ``kwargs`` with fresh weights (as in timm).
        checkpoint: a folder (or its ``model.safetensors``) written by
            :func:`artlens.models.checkpoint.save_checkpoint`; its config's keyword arguments are used
            and the weights loaded. Never unpickles anything.
        **kwargs: builder arguments (e.g. ``backbone="resnet18"`` for ``timm_regressor``).

    Returns:
        The model; in eval mode when weights were loaded.

    Raises:
        InvalidParameterError: unknown name or tag, a checkpoint of another model, or ``kwargs`` with
            loaded weights.
    """
    from artlens.models import builtin  # noqa: F401 - registers the built-in families
    from artlens.models import pretrained as shipped

    arch, _, tag = name.partition(".")
    if tag:
        shipped.pretrained_info(name)  # an unknown tag fails with the list of valid ones
    if pretrained:
        if checkpoint is not None:
            raise InvalidParameterError("give pretrained=True or a checkpoint, not both")
        if arch not in registered():
            entry = shipped.pretrained_info(name) if tag else None
            if entry is not None:
                raise InvalidParameterError(f"{entry.name} is not a registry model; load "
                                            f"pretrained_path({entry.name!r}) with {entry.loader}")
            build(arch)  # fails with the list of valid models
        checkpoint = str(shipped.pretrained_path(name if tag else shipped.default_tag(arch)))
    if checkpoint is not None:
        if kwargs:
            raise InvalidParameterError(f"loaded weights fix the architecture; drop {', '.join(sorted(kwargs))}")
        from artlens.models.checkpoint import load_checkpoint

        model, config = load_checkpoint(checkpoint)
        if config["model"] != arch:
            raise InvalidParameterError(f"checkpoint {checkpoint} holds a {config['model']!r} model, not {arch!r}")
        return model
    return build(arch, **kwargs)
