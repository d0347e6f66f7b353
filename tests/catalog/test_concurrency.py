"""Several processes on one catalog at once, on both backends: 4 writers x 500 analyses with readers, and
workers claiming jobs. Row counts must be exact, ids unique, and no job claimed twice."""

from __future__ import annotations

from collections import Counter

import pytest

from artlens.catalog import Catalog
from artlens.catalog.loadtest import claim_load, write_load

WRITERS, PER_WRITER = 4, 500


@pytest.mark.slow
@pytest.mark.parametrize("fresh", [False, True], ids=["existing", "fresh"])
def test_writers_and_readers(catalog_at, fresh: bool) -> None:
    if not fresh:
        Catalog(catalog_at).close()
    # A fresh catalog is created and migrated by whichever process gets there first, the others wait.
    per_writer = PER_WRITER if not fresh else 50
    result = write_load(catalog_at, writers=WRITERS, per_writer=per_writer, readers=2)
    ids = result["ids"]
    assert len(ids) == WRITERS * per_writer
    assert len(set(ids)) == len(ids)  # every writer got its own ids back
    assert result["reads"] > 0
    with Catalog(catalog_at) as cat:
        rows = cat.analyses(method="loadtest")
        assert len(rows) == WRITERS * per_writer
        assert sorted(r["id"] for r in rows) == sorted(ids)
        assert sorted((r["parameters"]["writer"], r["parameters"]["i"]) for r in rows) == sorted(
            (f"w{k}", i) for k in range(WRITERS) for i in range(per_writer)
        )
        assert len(cat.images()) == WRITERS


@pytest.mark.slow
def test_claim_job_never_double_claims(catalog_at) -> None:
    n_jobs = 200
    with Catalog(catalog_at) as cat:
        queued = {cat.add_job("threads.count", {"n": n}) for n in range(n_jobs)}
    claimed = claim_load(catalog_at, workers=4)
    every = [job_id for ids in claimed.values() for job_id in ids]
    assert Counter(every).most_common(1)[0][1] == 1  # no job twice
    assert set(every) == queued
    assert sum(1 for ids in claimed.values() if ids) >= 2  # they did compete
    with Catalog(catalog_at) as cat:
        jobs = cat.jobs()
        assert {j["state"] for j in jobs} == {"running"} and {j["attempts"] for j in jobs} == {1}
        assert all(j["id"] in claimed[j["worker"]] for j in jobs)  # the row names the worker that got it
        assert cat.claim_job("late") is None
