"""The batch engine (artlens.engine): outcomes as items finish, one failing item never stops the rest,
local (in-process and a process pool) and Ray (a running head, or a private local cluster)."""

from __future__ import annotations

import functools
import os

import pytest

from artlens.engine import Item, item_key, run_items
from artlens.errors import InvalidParameterError, UnreadableInputError


def _make_square(offset: int):  # noqa: ANN202 -- a worker factory: runs once per worker
    pid = os.getpid()

    def square(x: int) -> dict:
        if x == 3:
            raise UnreadableInputError("item 3 is corrupt")
        if x == 4:
            raise ZeroDivisionError("division by zero")
        return {"value": x * x + offset, "pid": pid}

    return square


def _items(n: int) -> list[Item]:
    return [Item(item_key(str(k), "square", {"offset": 1}), f"item{k}", k) for k in range(n)]


def _check(outcomes: list, n: int) -> dict[str, object]:
    by_label = {o.item.label: o for o in outcomes}
    assert sorted(by_label) == sorted(f"item{k}" for k in range(n))  # every item exactly once
    assert not by_label["item3"].ok and by_label["item3"].error == "item 3 is corrupt"
    assert not by_label["item4"].ok and by_label["item4"].error == "ZeroDivisionError: division by zero"
    for k in (0, 1, 2, 5):
        assert by_label[f"item{k}"].ok and by_label[f"item{k}"].result["value"] == k * k + 1
    return by_label


def test_item_key_depends_on_every_part():
    base = item_key("abc", "threads.spectral", {"window_cm": 1.0}, None)
    assert base == item_key("abc", "threads.spectral", {"window_cm": 1.0})
    assert len({base, item_key("abd", "threads.spectral", {"window_cm": 1.0}),
                item_key("abc", "threads.cnn", {"window_cm": 1.0}),
                item_key("abc", "threads.spectral", {"window_cm": 1.5}),
                item_key("abc", "threads.spectral", {"window_cm": 1.0}, "f00")}) == 5


def test_local_in_process_and_pool():
    factory = functools.partial(_make_square, 1)
    single = list(run_items(_items(6), factory))
    assert {o.result["pid"] for o in single if o.ok} == {os.getpid()}
    _check(single, 6)
    pooled = list(run_items(_items(6), factory, workers=2))
    by_label = _check(pooled, 6)
    assert os.getpid() not in {o.result["pid"] for o in by_label.values() if o.ok}


def test_bad_engine_options():
    # library errors name the parameter (the CLI shows it as --engine, --ray-address, --workers)
    with pytest.raises(InvalidParameterError, match="engine must be one of local, ray") as err:
        list(run_items(_items(1), functools.partial(_make_square, 1), engine="spark"))
    assert err.value.param == "engine"
    with pytest.raises(InvalidParameterError, match="ray_address") as err:
        list(run_items(_items(1), functools.partial(_make_square, 1), ray_address="auto"))
    assert err.value.param == "ray_address"
    with pytest.raises(InvalidParameterError, match="workers must be at least 1") as err:
        list(run_items(_items(1), functools.partial(_make_square, 1), workers=0))
    assert err.value.param == "workers"


def ray_head() -> str:
    address = os.environ.get("ARTLENS_TEST_RAY_ADDRESS")
    if not address:
        if os.environ.get("ARTLENS_REQUIRE_SERVICES") == "1":
            pytest.fail("ARTLENS_TEST_RAY_ADDRESS is not set but ARTLENS_REQUIRE_SERVICES=1 (.ci/services.sh start)")
        pytest.skip("no Ray head: set ARTLENS_TEST_RAY_ADDRESS (eval \"$(bash .ci/services.sh start)\")")
    return address


def _pickle_this_module_by_value() -> None:
    """Ray workers cannot import this test module: ship its functions by value."""
    import sys

    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])


def test_ray_on_a_running_head():
    pytest.importorskip("ray")
    _pickle_this_module_by_value()
    outcomes = list(run_items(_items(6), functools.partial(_make_square, 1), engine="ray", workers=2,
                              ray_address=ray_head()))
    by_label = _check(outcomes, 6)
    assert os.getpid() not in {o.result["pid"] for o in by_label.values() if o.ok}


def test_ray_address_that_answers_nothing_is_a_clear_error():
    pytest.importorskip("ray")
    with pytest.raises(InvalidParameterError, match="could not join the Ray cluster at 127.0.0.1:1"):
        list(run_items(_items(1), functools.partial(_make_square, 1), engine="ray", ray_address="127.0.0.1:1"))


def _make_thread_report():  # noqa: ANN202 -- a worker factory: what the worker's torch was given
    import torch

    return lambda _: {"torch": torch.get_num_threads(), "omp": os.environ.get("OMP_NUM_THREADS")}


def test_pool_workers_share_the_cores(monkeypatch):
    """Each local pool process runs torch on its share of the cores (as a Ray actor does), not on all of them;
    an OMP_NUM_THREADS set by the user stands."""
    pytest.importorskip("torch")
    from artlens.engine import _usable_cpus

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    share = max(1, _usable_cpus() // 2)
    got = [o.result for o in run_items(_items(2), _make_thread_report, workers=2)]
    assert got == [{"torch": share, "omp": str(share)}] * 2
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # (torch itself caps it at the cores it finds)
    got = [o.result for o in run_items(_items(2), _make_thread_report, workers=2)]
    assert [g["omp"] for g in got] == ["3", "3"]
