"""Importing this module registers every built-in model family (each registers its builders on import
with :func:`artlens.models.registry.register_model`)."""

from artlens.models import autoencoders, graph, heads, phase, regression, siamese, yarn

FAMILY_MODULES = (autoencoders, graph, heads, phase, regression, siamese, yarn)
"""The modules whose builders are registered."""
