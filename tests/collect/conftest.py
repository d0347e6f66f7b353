"""Replay-server fixtures for the collector tests: the recorded-style records in ``fixtures/``, served by
:class:`artlens.collect.testing.ReplayServer` on 127.0.0.1 port 0 from a thread (never the internet)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from collect_helpers import make_site

from artlens.collect.testing import ReplayServer, ReplaySite


@pytest.fixture
def site() -> ReplaySite:
    return make_site()


@pytest.fixture
def server(site: ReplaySite) -> Iterator[ReplayServer]:
    with ReplayServer(site) as srv:
        yield srv
