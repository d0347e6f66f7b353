"""Embedder registry, colour-histogram embedder, index build / resume / damage checks, search, metrics."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from artlens.errors import InputNotFoundError, InvalidParameterError, UnreadableInputError
from artlens.paintings.embedders import (
    ColourHistogramEmbedder,
    create_embedder,
    embedder_from_record,
    embedder_record,
    list_embedders,
)
from artlens.paintings.embedding import EmbedBatch
from artlens.paintings.search import (
    SearchIndex,
    average_precision_at_k,
    build_faiss_index,
    build_index,
    load_collection,
    mean_average_precision_at_k,
    recall_at_k,
)

# three "artists": a base colour and a stripe direction each
ARTISTS = {"monet": ((200, 80, 60), 0), "turner": ((60, 90, 200), 1), "hopper": ((70, 170, 70), 2)}


def make_image(path: Path, rgb: tuple[int, int, int], orientation: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:56, 0:72]
    stripes = [np.sin(xx / 2.0), np.sin(yy / 2.0), np.sin((xx + yy) / 2.0)][orientation]
    arr = np.asarray(rgb, float)[None, None, :] + 30 * stripes[..., None] + rng.normal(0, 12, (56, 72, 3))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(path)
    return path


def make_collection(root: Path, per_artist: int = 4) -> list[Path]:
    """``root/<artist>/<artist>_<i>.png`` (folder names become the ``label`` column)."""
    out = []
    for j, (a, (rgb, orient)) in enumerate(ARTISTS.items()):
        for i in range(per_artist):
            out.append(make_image(root / a / f"{a}_{i}.png", rgb, orient, seed=100 * j + i))
    return out


class SimulatedKill(BaseException):
    """The process killed mid-build (not an ``Exception``: the batch engine turns those into failed chunks)."""


class CountingEmbedder:
    """Wraps the colour histogram (same name/config, so same index identity), records what it embeds and can
    crash (be killed) after a number of calls."""

    def __init__(self, crash_after: int | None = None) -> None:
        self.inner = ColourHistogramEmbedder()
        self.name, self.dim, self.checksum, self.config = "colour-histogram", self.inner.dim, None, self.inner.config
        self.crash_after = crash_after
        self.calls = 0
        self.seen: list[str] = []

    def embed_paths(self, paths) -> EmbedBatch:
        if self.crash_after is not None and self.calls >= self.crash_after:
            raise SimulatedKill("simulated crash")
        self.calls += 1
        self.seen.extend(str(p) for p in paths)
        return self.inner.embed_paths(paths)


# --------------------------------------------------------------------------------------------------
# registry and embedder
# --------------------------------------------------------------------------------------------------


def test_registry_lists_and_rebuilds_the_colour_histogram() -> None:
    assert "colour-histogram" in list_embedders()
    emb = create_embedder("colour-histogram", space="lab", bins=[4, 4, 4])
    assert emb.dim == 4 * 4 * 4 + 8
    again = embedder_from_record({"embedder": embedder_record(emb)})
    assert again.config == emb.config and again.dim == emb.dim
    with pytest.raises(InvalidParameterError, match="colour-histogram"):
        create_embedder("no-such-embedder")
    with pytest.raises(InvalidParameterError, match="bad settings"):
        create_embedder("colour-histogram", colour_space="hsv")
    with pytest.raises(InvalidParameterError, match="weights"):
        embedder_from_record({"name": "colour-histogram", "config": {}, "checksum": "abc"})


def test_colour_histogram_vectors(tmp_path: Path) -> None:
    a = make_image(tmp_path / "a.png", (200, 80, 60), 0, seed=1)
    b = make_image(tmp_path / "b.png", (200, 80, 60), 0, seed=2)
    c = make_image(tmp_path / "c.png", (60, 90, 200), 1, seed=3)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    emb = ColourHistogramEmbedder()
    batch = emb.embed_paths([a, bad, b, c, tmp_path / "missing.png"])
    assert batch.paths == [str(a), str(b), str(c)]
    assert batch.vectors.shape == (3, 136) and batch.vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batch.vectors, axis=1), 1.0, atol=1e-6)
    sim = batch.vectors @ batch.vectors.T
    assert sim[0, 1] > 0.95 > 0.5 > sim[0, 2]  # same "artist" close, other one far
    assert [p for p, _ in batch.failures] == [str(bad), str(tmp_path / "missing.png")]
    assert all("\n" not in r and r for _, r in batch.failures)
    # a flat image has no texture: only the colour part, still unit length
    flat = tmp_path / "flat.png"
    Image.new("RGB", (30, 20), (10, 200, 30)).save(flat)
    v = emb.embed_paths([flat]).vectors[0]
    assert np.isclose(np.linalg.norm(v), 1.0) and np.count_nonzero(v) == 1


# --------------------------------------------------------------------------------------------------
# build and search
# --------------------------------------------------------------------------------------------------


def test_index_search_round_trip(tmp_path: Path) -> None:
    paths = make_collection(tmp_path / "coll")
    summary = build_index(tmp_path / "coll", tmp_path / "idx", "colour-histogram", batch_size=5, progress=False)
    assert (summary.images, summary.reused, summary.embedded, summary.failures) == (12, 0, 12, [])
    assert summary.faiss["type"] == "flat"
    idx = SearchIndex.open(tmp_path / "idx")
    assert len(idx) == 12 and idx.dim == 136 and idx.label_columns == ["label"]
    assert not (tmp_path / "idx" / "parts").exists()
    record = json.loads((tmp_path / "idx" / "index.json").read_text())
    assert record["embedder"]["name"] == "colour-histogram" and record["count"] == 12
    assert record["faiss"]["class"] == "IndexFlatIP" and record["artlens_version"]
    assert record["provenance"]["method"] == "search-index"
    table = pq.read_table(tmp_path / "idx" / "vectors.parquet")
    assert table.column_names == ["path", "sha256", "vector", "label"]
    vtype = table.schema.field("vector").type
    assert vtype.list_size == 136 and str(vtype.value_type) == "float"

    query = paths[5]  # turner_1
    hits = idx.search_image(query, k=4)
    assert hits[0].path == str(query.resolve()) and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert [h.rank for h in hits] == [1, 2, 3, 4]
    assert all(h.labels["label"] == "turner" for h in hits)
    assert hits[0].cosine == hits[0].score and hits[0].graph_distance is None
    # raw vectors give the same answer; k larger than the index is clipped
    row = idx.find(query)
    assert idx.paths()[row] == str(query.resolve())
    again = idx.search(idx.vectors()[row], k=50)[0]
    assert len(again) == 12 and again[0].path == hits[0].path
    assert idx.labels("label").count("monet") == 4
    assert idx.find(tmp_path / "elsewhere.png") is None
    assert mean_average_precision_at_k(idx, "label", k=3) == pytest.approx(1.0)
    with pytest.raises(InvalidParameterError, match="columns: label"):
        idx.labels("artist")


def test_collection_from_labels_csv_in_a_folder_or_given_itself(tmp_path: Path) -> None:
    root = tmp_path / "coll"
    rows = []
    for i, (a, (rgb, orient)) in enumerate(ARTISTS.items()):
        make_image(root / "img" / f"{i}.png", rgb, orient, seed=i)
        rows.append({"path": f"img/{i}.png", "artist": a, "style": "Impressionism" if i else "Romanticism"})
    with open(root / "labels.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["path", "artist", "style"])
        w.writeheader()
        w.writerows(rows)
    # one loader: a folder holding labels.csv is read through that CSV, exactly as the CSV itself
    from_folder = load_collection(root)
    from_csv = load_collection(root / "labels.csv")
    assert from_folder.paths == from_csv.paths and from_folder.labels == from_csv.labels
    for coll in (from_folder, from_csv):
        assert [Path(p).name for p in coll.paths] == ["0.png", "1.png", "2.png"]
        assert coll.labels[coll.paths[1]] == {"artist": "turner", "style": "Impressionism"}


def test_resume_after_a_crash_embeds_only_the_rest(tmp_path: Path) -> None:
    make_collection(tmp_path / "coll")
    crashing = CountingEmbedder(crash_after=1)
    with pytest.raises(SimulatedKill, match="simulated crash"):
        build_index(tmp_path / "coll", tmp_path / "idx", crashing, batch_size=4, progress=False)
    assert [p.name for p in (tmp_path / "idx" / "parts").iterdir()] == ["part-00000.parquet"]
    assert not (tmp_path / "idx" / "index.json").exists()
    with pytest.raises(UnreadableInputError, match="incomplete"):
        SearchIndex.open(tmp_path / "idx")

    counting = CountingEmbedder()
    summary = build_index(tmp_path / "coll", tmp_path / "idx", counting, batch_size=4, progress=False)
    assert (summary.images, summary.reused, summary.embedded) == (12, 4, 8)
    assert not set(counting.seen) & set(crashing.seen) and len(counting.seen) == 8

    build_index(tmp_path / "coll", tmp_path / "fresh", "colour-histogram", batch_size=4, progress=False)
    resumed, fresh = SearchIndex.open(tmp_path / "idx"), SearchIndex.open(tmp_path / "fresh")
    assert resumed.paths() == fresh.paths()
    np.testing.assert_array_equal(resumed.vectors(), fresh.vectors())

    # a rerun reuses everything; a changed image is embedded again
    make_image(tmp_path / "coll" / "monet" / "monet_0.png", (10, 10, 10), 1, seed=99)
    counting = CountingEmbedder()
    summary = build_index(tmp_path / "coll", tmp_path / "idx", counting, batch_size=4, progress=False)
    assert (summary.reused, summary.embedded) == (11, 1) and Path(counting.seen[0]).name == "monet_0.png"


def test_unreadable_images_are_reported_and_skipped(tmp_path: Path) -> None:
    make_collection(tmp_path / "coll", per_artist=2)
    (tmp_path / "coll" / "bad.jpg").write_bytes(b"garbage")
    good = make_image(tmp_path / "x.png", (1, 2, 3), 0, seed=0).read_bytes()
    (tmp_path / "coll" / "truncated.png").write_bytes(good[: len(good) // 3])
    with pytest.warns(UserWarning, match=r"2 of 8 images could not be read.*failures.csv"):
        summary = build_index(tmp_path / "coll", tmp_path / "idx", "colour-histogram", progress=False)
    assert summary.images == 6 and len(summary.failures) == 2
    with open(tmp_path / "idx" / "failures.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(Path(r["path"]).name for r in rows) == ["bad.jpg", "truncated.png"]
    assert all(r["reason"] for r in rows)
    assert len(SearchIndex.open(tmp_path / "idx")) == 6


def test_empty_or_unreadable_collection_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidParameterError, match="no images"):
        build_index(tmp_path / "empty", tmp_path / "idx", "colour-histogram", progress=False)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.jpg").write_bytes(b"nope")
    with pytest.warns(UserWarning), pytest.raises(InvalidParameterError, match="none of the 1 images"):
        build_index(tmp_path / "bad", tmp_path / "idx2", "colour-histogram", progress=False)
    with pytest.raises(InputNotFoundError):
        build_index(tmp_path / "missing", tmp_path / "idx3", "colour-histogram", progress=False)
    with pytest.raises(InvalidParameterError, match="index type"):
        build_index(tmp_path / "empty", tmp_path / "idx", "colour-histogram", index_type="lsh")


def test_another_embedder_is_refused_unless_rebuilding(tmp_path: Path) -> None:
    make_collection(tmp_path / "coll", per_artist=2)
    build_index(tmp_path / "coll", tmp_path / "idx", "colour-histogram", progress=True)  # rich bar on stderr
    lab = create_embedder("colour-histogram", space="lab")
    with pytest.raises(InvalidParameterError, match=r"built with embedder colour-histogram.*`rebuild=True`"):
        build_index(tmp_path / "coll", tmp_path / "idx", lab, progress=False)
    summary = build_index(tmp_path / "coll", tmp_path / "idx", lab, rebuild=True, progress=False)
    assert summary.reused == 0 and summary.embedded == 6
    assert SearchIndex.open(tmp_path / "idx").record["embedder"]["config"]["space"] == "lab"


def test_damaged_index_is_reported_with_rebuild_advice(tmp_path: Path) -> None:
    make_collection(tmp_path / "coll", per_artist=2)
    with pytest.raises(InputNotFoundError, match="no such index"):
        SearchIndex.open(tmp_path / "idx")
    build_index(tmp_path / "coll", tmp_path / "idx", "colour-histogram", progress=False)
    idx_dir = tmp_path / "idx"
    saved = {n: (idx_dir / n).read_bytes() for n in ("index.faiss", "index.json", "vectors.parquet")}

    def damaged(name: str, data: bytes) -> str:
        (idx_dir / name).write_bytes(data)
        with pytest.raises(UnreadableInputError) as info:
            SearchIndex.open(idx_dir)
        (idx_dir / name).write_bytes(saved[name])
        msg = str(info.value)
        assert "damaged" in msg and "`rebuild=True`" in msg and "\n" not in msg  # the CLI: --rebuild
        return msg

    assert "index.faiss" in damaged("index.faiss", saved["index.faiss"][: len(saved["index.faiss"]) // 2])
    assert "index.json" in damaged("index.json", b"{not json")
    assert "vectors.parquet" in damaged("vectors.parquet", saved["vectors.parquet"][:100])
    record = json.loads(saved["index.json"])
    record["count"] = 5
    assert "rows" in damaged("index.json", json.dumps(record).encode())
    SearchIndex.open(idx_dir)  # restored
    (tmp_path / "plain").mkdir()
    with pytest.raises(InputNotFoundError, match="not a search index"):
        SearchIndex.open(tmp_path / "plain")


# --------------------------------------------------------------------------------------------------
# FAISS types and metrics
# --------------------------------------------------------------------------------------------------


def _unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_hnsw_recall_against_exact_search() -> None:
    rng = np.random.default_rng(0)
    x, q = _unit_rows(rng, 2000, 64), _unit_rows(rng, 200, 64)
    flat, p_flat = build_faiss_index(x, "flat")
    hnsw, p_hnsw = build_faiss_index(x, "hnsw")
    assert (p_flat["type"], p_hnsw["type"]) == ("flat", "hnsw") and p_hnsw["M"] == 32
    exact = flat.search(q, 10)[1]
    approx = hnsw.search(q, 10)[1]
    assert recall_at_k(approx, exact) >= 0.9
    ivf, p_ivf = build_faiss_index(x, "ivf", nprobe=1000)
    assert p_ivf["nprobe"] == p_ivf["nlist"]  # all lists visited: exact
    assert recall_at_k(ivf.search(q, 10)[1], exact) == pytest.approx(1.0)
    assert build_faiss_index(x, "auto")[1]["type"] == "flat"


def test_pq_index_reranks_exactly_and_keeps_recall() -> None:
    import faiss

    from artlens.paintings.search.kinds import configure_search

    rng = np.random.default_rng(1)
    x, q = _unit_rows(rng, 3000, 64), _unit_rows(rng, 100, 64)
    exact_d, exact = build_faiss_index(x, "flat")[0].search(q, 10)
    pq, params = build_faiss_index(x, "pq")
    assert params["type"] == "pq" and params["M"] == 16 and params["rerank"] == 500
    d, ids = pq.search(q, 10)
    assert recall_at_k(ids, exact) >= 0.99
    # re-ranked scores are the exact cosines, not the compressed estimates
    assert np.allclose(d, np.take_along_axis(q @ x.T, ids, axis=1), atol=1e-5)
    # one candidate per result: the compressed ranking alone, clearly worse on structureless vectors
    configure_search(pq, params, rerank=1)
    assert faiss.downcast_index(pq).k_factor == 1
    assert recall_at_k(pq.search(q, 10)[1], exact) < 0.9
    with pytest.raises(InvalidParameterError, match="rerank"):
        build_faiss_index(x, "pq", rerank=0)
    # tiny collections and odd dimensions still build (training rows repeated, a divisor of dim)
    small, p_small = build_faiss_index(x[:5, :30], "pq")
    assert p_small["M"] == 6 and small.search(x[:1, :30], 1)[1][0, 0] == 0


def test_sharded_pq_scan_returns_the_unsplit_answer() -> None:
    from artlens.paintings.search import shard_pq_scan

    rng = np.random.default_rng(2)
    x, q = _unit_rows(rng, 3000, 64), _unit_rows(rng, 100, 64)
    exact = build_faiss_index(x, "flat")[0].search(q, 10)[1]
    pq, _ = build_faiss_index(x, "pq", rerank=8)
    d1, ids1 = pq.search(q, 10)
    sharded = shard_pq_scan(pq, 3)
    del pq  # the shards hold their own codes and vectors
    assert sharded.parts == 3 and sharded.ntotal == 3000
    assert [s.ntotal for s in sharded.shards] == [992, 1024, 984]  # whole 32-vector blocks, ids unchanged
    d3, ids3 = sharded.search(q, 10)
    # exact cosines of the right ids (the re-scoring happens inside each shard)
    assert np.allclose(d3, np.take_along_axis(q @ x.T, ids3, axis=1), atol=1e-5)
    # each shard re-scores rerank / parts of its own candidates: recall comparable to the unsplit index
    assert abs(recall_at_k(ids3, exact) - recall_at_k(ids1, exact)) < 0.05
    sharded.rerank = 300
    assert sharded.shards[0].k_factor == 100
    assert recall_at_k(sharded.search(q, 10)[1], exact) >= 0.99
    with pytest.raises(InvalidParameterError, match="pq index"):
        shard_pq_scan(build_faiss_index(x, "flat")[0], 2)
    with pytest.raises(InvalidParameterError, match="at least 2"):
        shard_pq_scan(build_faiss_index(x, "pq")[0], 1)


def test_large_pq_index_opens_sharded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import faiss

    from artlens.paintings import search

    paths = make_collection(tmp_path / "coll", per_artist=12)  # 36 vectors: two 32-vector blocks
    build_index(tmp_path / "coll", tmp_path / "pq", "colour-histogram", progress=False, index_type="pq")
    plain = SearchIndex.open(tmp_path / "pq")
    monkeypatch.setattr(search.kinds, "PQ_SHARD_MIN", 4)
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(2)
    try:
        sharded = SearchIndex.open(tmp_path / "pq", rerank=20)
    finally:
        faiss.omp_set_num_threads(threads)
    assert sharded._index.parts == 2 and sharded._index.rerank == 20
    vecs = plain.vectors()
    for a, b in zip(plain.search(vecs, k=4), sharded.search(vecs, k=4), strict=True):
        assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-5)
    assert sharded.search_image(paths[1], k=1)[0].path == str(paths[1].resolve())


def test_average_precision_by_hand() -> None:
    # ranked relevance 1 0 1 0 0 1, R = 3 relevant in all, k = 5:
    # P(1) = 1, P(3) = 2/3 -> AP@5 = (1 + 2/3) / min(5, 3) = 0.5556
    assert average_precision_at_k([1, 0, 1, 0, 0, 1], k=5, n_relevant=3) == pytest.approx(5 / 9)
    # k = 2 < R: (1 + 0) / min(2, 3) = 0.5
    assert average_precision_at_k([1, 0, 1], k=2, n_relevant=3) == pytest.approx(0.5)
    assert np.isnan(average_precision_at_k([0, 0], k=2, n_relevant=0))
    assert recall_at_k(np.array([[1, 2, -1]]), np.array([[2, 3, 1]])) == pytest.approx(2 / 3)


def test_mean_average_precision_by_hand() -> None:
    # four unit vectors at angles 0°, 10°, 20°, 90°; labels a, b, a, b.
    # q0 (a): neighbours 1 (b), 2 (a), 3 (b) -> rel 0 1 0, R = 1 -> AP@3 = (1/2) / 1 = 0.5
    # q1 (b): neighbours 0 / 2 (tie at 10°, both a), then 3 (b) -> rel 0 0 1, R = 1 -> AP = 1/3
    # q2 (a): neighbours 1 (b), 0 (a), 3 (b) -> rel 0 1 0 -> AP = 0.5
    # q3 (b): neighbours 2 (a, 70°), 1 (b, 80°), 0 (a) -> rel 0 1 0 -> AP = 0.5
    # mAP@3 = (0.5 + 1/3 + 0.5 + 0.5) / 4 = 0.4583
    ang = np.deg2rad([0.0, 10.0, 20.0, 90.0])
    vecs = np.stack([np.cos(ang), np.sin(ang)], axis=1)
    assert mean_average_precision_at_k(vecs, ["a", "b", "a", "b"], k=3) == pytest.approx(11 / 24)
    # unlabelled items are no queries; a label seen once has no relevant partner
    assert np.isnan(mean_average_precision_at_k(vecs, ["a", "b", "c", None], k=3))


def test_auto_switches_to_hnsw_above_the_threshold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import faiss

    from artlens.paintings import search

    paths = make_collection(tmp_path / "coll", per_artist=2)
    monkeypatch.setattr(search.kinds, "AUTO_APPROX_THRESHOLD", 5)
    summary = build_index(tmp_path / "coll", tmp_path / "idx", "colour-histogram", progress=False)
    assert summary.faiss["type"] == "hnsw" and summary.faiss["efSearch"] == search.HNSW_EF_SEARCH
    idx = SearchIndex.open(tmp_path / "idx", ef_search=40)
    assert faiss.downcast_index(idx._index).hnsw.efSearch == 40
    assert idx.search_image(paths[0], k=1)[0].path == str(paths[0].resolve())
    summary = build_index(tmp_path / "coll", tmp_path / "ivf", "colour-histogram", progress=False, index_type="ivf")
    assert summary.faiss["type"] == "ivf" and summary.faiss["nlist"] == 1
    assert SearchIndex.open(tmp_path / "ivf").search_image(paths[3], k=1)[0].path == str(paths[3].resolve())
    summary = build_index(tmp_path / "coll", tmp_path / "pq", "colour-histogram", progress=False, index_type="pq")
    assert summary.faiss["type"] == "pq"
    opened = SearchIndex.open(tmp_path / "pq", rerank=20)
    assert faiss.downcast_index(opened._index).k_factor == 20
    assert opened.search_image(paths[2], k=1)[0].path == str(paths[2].resolve())
