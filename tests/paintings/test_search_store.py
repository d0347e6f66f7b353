"""The memory-mapped re-ranking store of pq indexes (``vectors.f32.npy``): same answers as in RAM,
made for old folders without touching their other files, rewritten when damaged, sharded views."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from tests.paintings.test_search import make_collection

from artlens.errors import InvalidParameterError
from artlens.paintings import search
from artlens.paintings.search import SearchIndex, build_faiss_index, build_index, shard_pq_scan
from artlens.paintings.search.kinds import attach_rerank_vectors
from artlens.paintings.search.store import RERANK_VECTORS, open_rerank_vectors, write_rerank_vectors


def _unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    x = _unit_rows(rng, 3000, 64)
    x[100:125] = x[7]  # 26 equal vectors: ties in the exact scores, across a k = 10 boundary
    q = np.vstack([x[7:8], _unit_rows(rng, 60, 64)])
    return x, q


def _mapped_pq(tmp_path: Path, x: np.ndarray, rerank: int):
    """The pq index written to disk and read back with its exact vectors memory-mapped from a .npy."""
    import faiss

    index, _ = build_faiss_index(x, "pq", rerank=rerank)
    faiss.write_index(index, str(tmp_path / "pq.faiss"))
    write_rerank_vectors(tmp_path / "v.npy", x)
    mapped = faiss.read_index(str(tmp_path / "pq.faiss"), faiss.IO_FLAG_MMAP_IFC)
    vectors = open_rerank_vectors(tmp_path / "v.npy", *x.shape)
    assert isinstance(vectors, np.memmap) and not vectors.flags.writeable
    attach_rerank_vectors(mapped, vectors)
    faiss.downcast_index(mapped).k_factor = rerank
    faiss.downcast_index(faiss.downcast_index(mapped).base_index).implem = 13
    return index, mapped


def test_memmap_reranking_equals_the_in_ram_one_bit_for_bit(tmp_path: Path) -> None:
    import faiss

    x, q = _data()
    ram, mapped = _mapped_pq(tmp_path, x, rerank=20)
    assert not faiss.downcast_index(faiss.downcast_index(mapped).refine_index).codes.is_owned  # no copy
    for k in (1, 10, 40):
        d_ram, i_ram = ram.search(q, k)
        d_map, i_map = mapped.search(q, k)
        np.testing.assert_array_equal(i_map, i_ram)
        np.testing.assert_array_equal(d_map, d_ram)
        # one query at a time too (the path of a single search)
        for j in (0, 5):
            d1, i1 = mapped.search(q[j:j + 1], k)
            np.testing.assert_array_equal(i1, i_ram[j:j + 1])
            np.testing.assert_array_equal(d1, d_ram[j:j + 1])
    # the scores are exact cosines; the duplicates of row 7 fill the top 10 of query 0
    assert np.allclose(d_ram, np.take_along_axis(q @ x.T, i_ram, axis=1), atol=1e-5)
    assert set(ram.search(q[:1], 10)[1][0]) <= {7, *range(100, 125)}


def test_sharded_memmap_reranking_equals_sharded_in_ram(tmp_path: Path) -> None:
    x, q = _data()
    ram, mapped = _mapped_pq(tmp_path, x, rerank=24)
    d_ram, i_ram = shard_pq_scan(ram, 3).search(q, 10)
    sharded = shard_pq_scan(mapped, 3)
    del mapped  # the shards view the memory map and keep it alive
    assert sharded.kept[0] is not None and isinstance(sharded.kept[0], np.memmap)
    d_map, i_map = sharded.search(q, 10)
    np.testing.assert_array_equal(i_map, i_ram)
    np.testing.assert_array_equal(d_map, d_ram)


def test_auto_store_follows_the_available_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    from artlens.paintings.search.kinds import auto_rerank_store

    gb = 2**30
    assert auto_rerank_store(1_000_000, 512, available=16 * gb) == "ram"  # 2 GB of 16: 1/8
    assert auto_rerank_store(1_000_000, 512, available=6 * gb) == "memmap"  # 2 GB of 6: 1/3
    real = search.kinds.available_memory()
    assert real is None or real > 0
    monkeypatch.setattr(search.kinds, "available_memory", lambda: None)  # unknown: by count
    assert auto_rerank_store(999_999, 512) == "ram"
    assert auto_rerank_store(1_000_000, 512) == "memmap"


def test_attach_refuses_other_indexes_and_wrong_shapes(tmp_path: Path) -> None:
    x, _ = _data()
    with pytest.raises(InvalidParameterError, match="pq index"):
        attach_rerank_vectors(build_faiss_index(x, "flat")[0], x)
    pq, _ = build_faiss_index(x, "pq")
    with pytest.raises(InvalidParameterError, match=r"need \(3000, 64\)") as err:
        attach_rerank_vectors(pq, x[:10])
    assert err.value.param == "vectors"
    with pytest.raises(InvalidParameterError, match="C-contiguous float32"):
        attach_rerank_vectors(pq, x.astype(np.float64))


def test_open_rerank_vectors_refuses_damaged_files(tmp_path: Path) -> None:
    x, _ = _data()
    path = tmp_path / "v.npy"
    assert open_rerank_vectors(path, 3000, 64) is None  # missing
    write_rerank_vectors(path, x, chunk_rows=1000)
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left
    got = open_rerank_vectors(path, 3000, 64)
    assert got is not None and np.array_equal(got, x)
    assert open_rerank_vectors(path, 3000, 32) is None  # another shape
    del got
    path.write_bytes(path.read_bytes()[:5000])  # truncated
    assert open_rerank_vectors(path, 3000, 64) is None
    path.write_bytes(b"not a numpy file")
    assert open_rerank_vectors(path, 3000, 64) is None
    np.save(path, x.astype(np.float64))
    assert open_rerank_vectors(path, 3000, 64) is None


def _pq_folder(tmp_path: Path) -> tuple[Path, list[Path]]:
    paths = make_collection(tmp_path / "coll", per_artist=12)  # 36 vectors: two 32-vector blocks
    build_index(tmp_path / "coll", tmp_path / "pq", "colour-histogram", progress=False, index_type="pq")
    return tmp_path / "pq", paths


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_build_writes_the_store_and_open_chooses_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder, paths = _pq_folder(tmp_path)
    ram = SearchIndex.open(folder, rerank=20)
    store = open_rerank_vectors(folder / RERANK_VECTORS, 36, ram.dim)
    assert store is not None and np.array_equal(store, ram.vectors())
    assert ram.rerank_store == "ram"  # 36 vectors: a tiny share of the memory
    mapped = SearchIndex.open(folder, rerank=20, rerank_store="memmap")
    assert mapped.rerank_store == "memmap"
    vecs = ram.vectors()
    for a, b in zip(ram.search_ids(vecs, 8), mapped.search_ids(vecs, 8), strict=True):
        np.testing.assert_array_equal(a, b)
    assert mapped.search_image(paths[4], k=1)[0].path == str(paths[4].resolve())
    monkeypatch.setattr(search.kinds, "available_memory", lambda: 4 * 36 * ram.dim * 3)  # 1/3 > RERANK_RAM_SHARE
    assert SearchIndex.open(folder).rerank_store == "memmap"
    assert SearchIndex.open(folder, rerank_store="ram").rerank_store == "ram"
    # sharded and memory-mapped: the in-RAM sharded answer
    import faiss

    monkeypatch.setattr(search.kinds, "PQ_SHARD_MIN", 4)
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(2)
    try:
        sharded_ram = SearchIndex.open(folder, rerank=20, rerank_store="ram")
        sharded_map = SearchIndex.open(folder, rerank=20, rerank_store="memmap")
    finally:
        faiss.omp_set_num_threads(threads)
    assert sharded_map._index.parts == 2
    for a, b in zip(sharded_ram.search_ids(vecs, 8), sharded_map.search_ids(vecs, 8), strict=True):
        np.testing.assert_array_equal(a, b)


def test_an_old_folder_gets_its_store_without_other_files_changing(tmp_path: Path) -> None:
    folder, _ = _pq_folder(tmp_path)
    (folder / RERANK_VECTORS).unlink()  # as built before the store existed
    before = _digests(folder)
    ram = SearchIndex.open(folder, rerank=20, rerank_store="ram")
    assert not (folder / RERANK_VECTORS).exists()  # the in-RAM store writes nothing
    mapped = SearchIndex.open(folder, rerank=20, rerank_store="memmap")
    after = _digests(folder)
    assert set(after) == set(before) | {RERANK_VECTORS}
    assert {n: after[n] for n in before} == before
    assert sorted(p.name for p in folder.iterdir()) == sorted(after)  # no temporary file left
    vecs = ram.vectors()
    assert np.array_equal(np.load(folder / RERANK_VECTORS), vecs)
    for a, b in zip(ram.search_ids(vecs, 8), mapped.search_ids(vecs, 8), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("damage", ["truncate", "other_vectors", "garbage"])
def test_a_damaged_store_is_written_again(tmp_path: Path, damage: str) -> None:
    folder, _ = _pq_folder(tmp_path)
    store = folder / RERANK_VECTORS
    good = np.load(store)
    if damage == "truncate":
        store.write_bytes(store.read_bytes()[:300])
    elif damage == "other_vectors":
        np.save(store, good[::-1].copy())  # right shape and type, wrong rows
    else:
        store.write_bytes(b"\x00" * 100)
    mapped = SearchIndex.open(folder, rerank=20, rerank_store="memmap")
    assert np.array_equal(np.load(store), good)
    ram = SearchIndex.open(folder, rerank=20, rerank_store="ram")
    vecs = ram.vectors()
    for a, b in zip(ram.search_ids(vecs, 8), mapped.search_ids(vecs, 8), strict=True):
        np.testing.assert_array_equal(a, b)


def test_an_unwritable_store_falls_back_to_the_mapped_faiss_file(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    folder, _ = _pq_folder(tmp_path)
    (folder / RERANK_VECTORS).unlink()
    before = _digests(folder)

    def refuse(path: Path, vectors: np.ndarray, chunk_rows: int = 0) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(search.index, "write_rerank_vectors", refuse)
    with pytest.warns(UserWarning, match="cannot be written .*Permission denied.*index.faiss memory-mapped"):
        mapped = SearchIndex.open(folder, rerank=20, rerank_store="memmap")
    assert _digests(folder) == before
    ram = SearchIndex.open(folder, rerank=20, rerank_store="ram")
    vecs = ram.vectors()
    for a, b in zip(ram.search_ids(vecs, 8), mapped.search_ids(vecs, 8), strict=True):
        np.testing.assert_array_equal(a, b)


def test_bad_rerank_store_values_are_refused(tmp_path: Path) -> None:
    folder, _ = _pq_folder(tmp_path)
    with pytest.raises(InvalidParameterError, match="rerank_store 'disk': use one of auto, ram, memmap") as err:
        SearchIndex.open(folder, rerank_store="disk")
    assert err.value.param == "rerank_store"
    build_index(tmp_path / "coll", tmp_path / "flat", "colour-histogram", progress=False, index_type="flat")
    assert not (tmp_path / "flat" / RERANK_VECTORS).exists()
    assert SearchIndex.open(tmp_path / "flat").rerank_store is None
    with pytest.raises(InvalidParameterError, match="'memmap' is for pq indexes; this one is 'flat'"):
        SearchIndex.open(tmp_path / "flat", rerank_store="memmap")


def test_a_rebuild_as_another_type_leaves_no_stale_store(tmp_path: Path) -> None:
    folder, _ = _pq_folder(tmp_path)
    assert (folder / RERANK_VECTORS).exists()
    build_index(tmp_path / "coll", folder, "colour-histogram", progress=False, index_type="flat")  # resumed
    assert not (folder / RERANK_VECTORS).exists()
    build_index(tmp_path / "coll", folder, "colour-histogram", progress=False, index_type="pq")
    assert (folder / RERANK_VECTORS).exists()
    build_index(tmp_path / "coll", folder, "colour-histogram", progress=False, index_type="flat", rebuild=True)
    assert not (folder / RERANK_VECTORS).exists()
