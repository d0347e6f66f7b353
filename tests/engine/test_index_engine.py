"""``artlens paintings index`` with the embedding on the batch engine: chunks embedded by workers that each
build the embedder once, parts written as chunks finish, a killed build resumes, the same vectors as the
one-process build."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image
from sigkill import kill_after

from artlens.paintings.embedders import ColourHistogramEmbedder
from artlens.paintings.search import build_index

N_IMAGES = 9


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for k in range(N_IMAGES):
        base = np.zeros((48, 64, 3), np.float32)
        base[..., k % 3] = 80 + 15 * k
        Image.fromarray(np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)).save(
            folder / f"p{k}.png")
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8 truncated")
    return folder


def vectors(index_dir: Path) -> dict[str, np.ndarray]:
    t = pq.read_table(index_dir / "vectors.parquet", columns=["path", "vector"]).to_pydict()
    return {Path(p).name: np.asarray(v, np.float32) for p, v in zip(t["path"], t["vector"], strict=True)}


def index(cli, photos: Path, idx: Path, *extra: object) -> dict:
    code, out, err = cli("paintings", "index", photos, "--index", idx, "--batch-size", "2", "--json",
                         "--no-catalog", *extra)
    assert code == 0, err
    return json.loads(out)


def test_workers_give_the_vectors_of_the_one_process_build(cli, photos, tmp_path):
    one = index(cli, photos, tmp_path / "one", "--embedder", "colour-histogram")
    two = index(cli, photos, tmp_path / "two", "--embedder", "colour-histogram", "--workers", "2")
    assert one["images"] == two["images"] == N_IMAGES and one["failures"] == two["failures"] == 1
    a, b = vectors(tmp_path / "one"), vectors(tmp_path / "two")
    assert list(a) == list(b) == sorted(a)  # the collection's order, whatever order the chunks finished in
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert "corrupt.jpg" in (tmp_path / "two" / "failures.csv").read_text()
    again = index(cli, photos, tmp_path / "two", "--workers", "2")  # a rerun: nothing new
    assert again["reused"] == again["images"] == N_IMAGES


@pytest.mark.slow
def test_a_cnn_embedder_one_per_worker(cli, photos, tmp_path):
    pytest.importorskip("torch")
    one = index(cli, photos, tmp_path / "one", "--embedder", "lite0-global")
    two = index(cli, photos, tmp_path / "two", "--embedder", "lite0-global", "--workers", "2")
    assert one["images"] == two["images"] == N_IMAGES
    a, b = vectors(tmp_path / "one"), vectors(tmp_path / "two")
    assert list(a) == list(b)
    # the same chunks give the same vectors, to float rounding (the workers run torch on their share of the cores)
    assert max(float(np.abs(a[k] - b[k]).max()) for k in a) < 1e-6


class _Killed(BaseException):
    """Stands for the process being killed (not an ``Exception``: the engine does not catch it)."""


class _DiesAfter(ColourHistogramEmbedder):
    def __init__(self, chunks: int) -> None:
        super().__init__()
        self.left = chunks

    def embed_paths(self, paths):  # type: ignore[no-untyped-def]
        if self.left == 0:
            raise _Killed
        self.left -= 1
        return super().embed_paths(paths)


def test_a_killed_build_resumes_with_the_same_vectors(photos, tmp_path):
    full = tmp_path / "full"
    build_index(photos, full, ColourHistogramEmbedder(), batch_size=2, progress=False)
    idx = tmp_path / "idx"
    with pytest.raises(_Killed):
        build_index(photos, idx, _DiesAfter(2), batch_size=2, progress=False)
    parts = sorted((idx / "parts").glob("part-*.parquet"))
    assert len(parts) == 2 and not (idx / "index.json").exists()
    # a part damaged on disk only costs its images' embedding again (parts are written atomically)
    kept = pq.read_table(parts[0]).num_rows  # (the first chunk holds corrupt.jpg, skipped)
    parts[1].write_bytes(parts[1].read_bytes()[:40])
    with pytest.warns(UserWarning, match="cannot be read"):
        summary = build_index(photos, idx, ColourHistogramEmbedder(), batch_size=2, progress=False, workers=2)
    assert kept >= 1 and summary.reused == kept and summary.embedded == N_IMAGES - kept
    a, b = vectors(full), vectors(idx)
    assert list(a) == list(b) and all(np.array_equal(a[k], b[k]) for k in a)
    again = build_index(photos, idx, ColourHistogramEmbedder(), batch_size=2, progress=False)
    assert again.embedded == 0 and again.reused == N_IMAGES


def test_kill_9_mid_build_then_resume(cli, photos, tmp_path, _isolated_catalog):
    """``artlens paintings index`` SIGKILLed right after its second Parquet part: the next run embeds only the
    images that no part holds, the vectors are those of an uninterrupted build, and a third run embeds none."""
    full = index(cli, photos, tmp_path / "full", "--embedder", "colour-histogram")
    idx = tmp_path / "idx"
    args = ("paintings", "index", photos, "--index", idx, "--batch-size", "2", "--embedder", "colour-histogram")
    kill_after(args, writer="artlens.paintings.search.build:write_parquet_atomic", marker="/part-", after=2,
               catalog=_isolated_catalog, log=tmp_path / "killed.log")
    parts = sorted((idx / "parts").glob("part-*.parquet"))
    assert len(parts) == 2 and not (idx / "index.json").exists()
    landed = sum(pq.read_table(p).num_rows for p in parts)  # (the first chunk holds corrupt.jpg, skipped)
    assert 2 <= landed < N_IMAGES
    code, stdout, err = cli(*args, "--json")
    assert code == 0, err
    resumed = json.loads(stdout)
    assert (resumed["images"], resumed["reused"]) == (N_IMAGES, landed)  # the other images embedded again
    a, b = vectors(tmp_path / "full"), vectors(idx)
    assert full["images"] == N_IMAGES and list(a) == list(b) and all(np.array_equal(a[k], b[k]) for k in a)
    code, stdout, _ = cli(*args)
    assert code == 0 and f"indexed {N_IMAGES} images" in stdout and f"0 new (embedded), {N_IMAGES} reused" in stdout


class _FailsOnce(ColourHistogramEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def embed_paths(self, paths):  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("the embedder broke")
        return super().embed_paths(paths)


def test_an_embedder_error_fails_its_chunk_only(photos, tmp_path):
    idx = tmp_path / "idx"
    with pytest.warns(UserWarning, match="could not be read"):
        summary = build_index(photos, idx, _FailsOnce(), batch_size=2, progress=False)
    broke = [p for p, why in summary.failures if "RuntimeError: the embedder broke" in why]
    assert len(broke) == 2 and summary.images == N_IMAGES - 2 and "the embedder broke" in (
        idx / "failures.csv").read_text()
    with pytest.warns(UserWarning):  # corrupt.jpg
        again = build_index(photos, idx, ColourHistogramEmbedder(), batch_size=2, progress=False)
    assert (again.images, again.reused, again.embedded) == (N_IMAGES, N_IMAGES - 2, 2)


def test_engine_errors_are_one_line(cli, photos, tmp_path):
    cases = [
        (("--engine", "spark"), "--engine must be one of local, ray"),
        (("--workers", "0"), "workers must be at least 1"),
        (("--ray-address", "auto"), "is used with engine 'ray'"),
    ]
    for args, text in cases:
        code, _, err = cli("paintings", "index", photos, "--index", tmp_path / "i", "--embedder", "colour-histogram",
                           *args)
        assert code == 7 and text in err and "Traceback" not in err, (args, err)
        assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "i").exists()


@pytest.mark.slow
def test_ray_engine_on_the_running_head(cli, photos, tmp_path):
    pytest.importorskip("ray")
    address = os.environ.get("ARTLENS_TEST_RAY_ADDRESS")
    if not address:
        if os.environ.get("ARTLENS_REQUIRE_SERVICES") == "1":
            pytest.fail("ARTLENS_TEST_RAY_ADDRESS is not set but ARTLENS_REQUIRE_SERVICES=1")
        pytest.skip("no Ray head: set ARTLENS_TEST_RAY_ADDRESS (eval \"$(bash .ci/services.sh start)\")")
    one = index(cli, photos, tmp_path / "one", "--embedder", "colour-histogram")
    ray = index(cli, photos, tmp_path / "ray", "--embedder", "colour-histogram", "--engine", "ray",
                "--ray-address", address, "--workers", "2")
    assert ray["images"] == one["images"] == N_IMAGES and ray["failures"] == 1
    a, b = vectors(tmp_path / "one"), vectors(tmp_path / "ray")
    assert list(a) == list(b) and all(np.allclose(a[k], b[k], atol=1e-6) for k in a)
