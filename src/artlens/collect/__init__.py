"""Collectors: build a labelled image collection from museum open-access APIs, Artsy and WikiArt.

``collect(source, out, client, options)`` runs one source (:class:`MetSource`, :class:`AicSource`,
:class:`ArtsySource`, :class:`WikiArtSource`) into a folder with ``images/``, ``labels.csv`` and
``skipped.csv``, politely (:class:`PoliteClient`) and resumably (a journal in the folder). The CLI is
``artlens collect met|aic|artsy|wikiart``; see ``docs/collect.md``.
"""

from artlens.collect.aic import AicSource
from artlens.collect.artsy import ArtsySource
from artlens.collect.base import (
    LABEL_COLUMNS,
    MEDIUM_CLASSES,
    CollectOptions,
    CollectResult,
    Filters,
    Record,
    Ref,
    Skip,
    Source,
    collect,
    medium_class,
)
from artlens.collect.http import PoliteClient, default_user_agent
from artlens.collect.met import MetSource
from artlens.collect.wikiart import WikiArtSource

__all__ = [
    "LABEL_COLUMNS", "MEDIUM_CLASSES", "AicSource", "ArtsySource", "CollectOptions", "CollectResult", "Filters",
    "MetSource", "PoliteClient", "Record", "Ref", "Skip", "Source", "WikiArtSource", "collect",
    "default_user_agent", "medium_class",
]
