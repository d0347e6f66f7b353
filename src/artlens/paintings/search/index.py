"""Open a built index folder and search it: :class:`SearchIndex`.

:meth:`SearchIndex.open` checks the folder (``index.json``, ``vectors.parquet``, ``index.faiss``;
a damaged or incomplete one is refused with the advice to rebuild) and answers nearest-neighbour
queries by cosine similarity (:meth:`SearchIndex.search`, :meth:`SearchIndex.search_image`).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from artlens.errors import InputNotFoundError, InvalidParameterError, UnreadableInputError
from artlens.paintings.embedders import embedder_from_record, embedder_record, same_embedder
from artlens.paintings.embedding import Embedder, l2_normalise
from artlens.paintings.search.kinds import (
    attach_rerank_vectors,
    auto_rerank_store,
    check_rerank_store,
    faiss_module,
    prepare_for_search,
    rerank_vectors_of,
)
from artlens.paintings.search.results import Hit
from artlens.paintings.search.store import (
    INDEX_FORMAT,
    RERANK_VECTORS,
    open_rerank_vectors,
    read_json,
    rebuild_hint,
    vectors_from_column,
    write_rerank_vectors,
)
from artlens.provenance import resolve_path, sha256_file

__all__ = ["SearchIndex"]


def _use_rerank_store(index_dir: Path, index: Any, count: int, dim: int) -> None:
    """Point a pq index read with ``IO_FLAG_MMAP_IFC`` at the folder's memory-mapped
    ``vectors.f32.npy``, writing that file first (from the vectors of ``index.faiss``, which FAISS has
    mapped) when it is missing, damaged or does not hold the index's vectors (three rows compared)."""
    import warnings

    path = index_dir / RERANK_VECTORS
    source = rerank_vectors_of(index)
    rows = sorted({0, count // 2, count - 1})
    mapped = open_rerank_vectors(path, count, dim)
    if mapped is None or not np.array_equal(mapped[rows], source[rows]):
        del mapped
        try:
            write_rerank_vectors(path, source)
        except OSError as exc:
            warnings.warn(f"{path}: cannot be written ({exc.strerror or type(exc).__name__}); re-ranking reads "
                          "index.faiss memory-mapped instead", stacklevel=3)
            return
        mapped = open_rerank_vectors(path, count, dim)
        if mapped is None:  # pragma: no cover - just written
            raise UnreadableInputError(f"{path}: written but cannot be read back; {rebuild_hint(index_dir)}")
    attach_rerank_vectors(index, mapped)


class SearchIndex:
    """A built index folder, checked and ready for queries (see :meth:`open`).

    Attributes:
        index_dir: the folder.
        record: the parsed ``index.json``.
        count: number of indexed images.
        dim: vector length.
        label_columns: label column names.
    """

    def __init__(self, index_dir: Path, record: dict[str, Any], faiss_index: Any, paths: list[str],
                 shas: list[str]) -> None:
        self.index_dir = index_dir
        self.record = record
        self.count = int(record["count"])
        self.dim = int(record["dim"])
        self.label_columns: list[str] = list(record.get("label_columns") or [])
        self._index = faiss_index
        self._paths = paths
        self._shas = shas
        self._labels: dict[str, list[str | None]] | None = None
        self._vectors: np.ndarray | None = None
        self._embedder: Embedder | None = None
        self._row_of_path = {p: i for i, p in enumerate(paths)}
        self.rerank_store: str | None = None
        """``"ram"`` or ``"memmap"`` for a pq index (where its re-ranking reads the exact vectors), else ``None``."""

    @classmethod
    def open(cls, index_dir: str | os.PathLike[str], *, ef_search: int | None = None,
             nprobe: int | None = None, rerank: int | None = None, rerank_store: str = "auto") -> SearchIndex:
        """Open and check an index folder written by :func:`build_index`.

        Args:
            index_dir: the folder.
            ef_search: HNSW candidate list size (default: the one recorded).
            nprobe: IVF lists visited per query (default: the one recorded).
            rerank: PQ candidates re-scored exactly per result wanted (default: the one recorded).
            rerank_store: where a pq index keeps the exact vectors it re-ranks with: ``"ram"`` (read
                into memory, 4·dim bytes per vector), ``"memmap"`` (``vectors.f32.npy`` memory-mapped,
                a query reads only its candidates' rows; the same ids and scores) or ``"auto"``
                (memmap when the vectors would take more than a quarter of the available memory:
                :func:`~artlens.paintings.search.kinds.auto_rerank_store`).
                A folder built without ``vectors.f32.npy`` gets it on first memmap open (copied
                from ``index.faiss``, written atomically; no other file is touched); where it cannot
                be written, FAISS maps ``index.faiss`` itself (a warning says so). Other index
                types keep their vectors in the FAISS index: ``"memmap"`` is refused for them.

        Returns:
            The index.

        Raises:
            InputNotFoundError: no such folder, or a folder that is not an index.
            UnreadableInputError: a damaged or incomplete index (missing, truncated or corrupt
                ``index.json``, ``vectors.parquet`` or ``index.faiss``, or counts that disagree); the
                message says how to rebuild it.
        """
        import pyarrow.parquet as pq

        check_rerank_store(rerank_store)
        d = Path(index_dir).expanduser()
        if not d.exists():
            raise InputNotFoundError(f"{d}: no such index folder (build one with `build_index`)")
        if not d.is_dir():
            raise UnreadableInputError(f"{d}: is a file, not an index folder")

        def damaged(why: str) -> UnreadableInputError:
            return UnreadableInputError(f"{d}: search index is damaged ({why}); {rebuild_hint(d)}")

        rec_path = d / "index.json"
        if not rec_path.exists():
            if (d / "parts").is_dir() or (d / "embedder.json").exists():
                raise UnreadableInputError(f"{d}: search index is incomplete (an interrupted build?); run "
                                           "`build_index` on it again to finish it, or start over with "
                                           "`rebuild=True`")
            raise InputNotFoundError(f"{d}: not a search index (no index.json); build one with `build_index`")
        record = read_json(rec_path)
        if record is None:
            raise damaged("index.json is not valid JSON")
        try:
            if record.get("format") != INDEX_FORMAT:
                raise ValueError("not an artlens search index")
            count, dim = int(record["count"]), int(record["dim"])
            if count < 1 or dim < 1 or not isinstance(record.get("embedder"), dict):
                raise ValueError("bad count, dim or embedder")
            params = dict(record.get("faiss") or {})
        except (KeyError, TypeError, ValueError) as exc:
            raise damaged(f"index.json: {exc}") from None
        store: str | None = None
        if params.get("type") == "pq":
            store = rerank_store if rerank_store != "auto" else auto_rerank_store(count, dim)
        elif rerank_store == "memmap":
            raise InvalidParameterError(f"{d}: rerank_store 'memmap' is for pq indexes; this one is "
                                        f"{params.get('type')!r} and keeps its vectors in index.faiss",
                                        param="rerank_store")

        vec_path = d / "vectors.parquet"
        if not vec_path.is_file():
            raise damaged("vectors.parquet is missing")
        try:
            pf = pq.ParquetFile(vec_path)
            names = set(pf.schema_arrow.names)
            if not {"path", "sha256", "vector"} <= names:
                raise ValueError("columns path, sha256, vector missing")
            if pf.metadata.num_rows != count:
                raise ValueError(f"{pf.metadata.num_rows} rows, index.json says {count}")
            t = pf.read(columns=["path", "sha256"])
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds for a bad file
            raise damaged(f"vectors.parquet: {str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__}") \
                from None

        faiss = faiss_module()
        fx_path = d / "index.faiss"
        if not fx_path.is_file():
            raise damaged("index.faiss is missing")
        try:
            # memmap: FAISS maps the exact vectors of index.faiss instead of reading them
            index = faiss.read_index(str(fx_path), faiss.IO_FLAG_MMAP_IFC if store == "memmap" else 0)
        except RuntimeError:
            raise damaged("index.faiss cannot be read: truncated or corrupt") from None
        if index.ntotal != count or index.d != dim:
            raise damaged(f"index.faiss holds {index.ntotal} vectors of {index.d} dims, index.json says "
                          f"{count} of {dim}")
        if store == "memmap":
            if not isinstance(faiss.downcast_index(index), faiss.IndexRefineFlat):
                raise damaged(f"index.faiss holds a {type(faiss.downcast_index(index)).__name__}, not a pq index")
            _use_rerank_store(d, index, count, dim)
        index = prepare_for_search(index, params, count, ef_search=ef_search, nprobe=nprobe, rerank=rerank)
        opened = cls(d, record, index, t.column("path").to_pylist(), t.column("sha256").to_pylist())
        opened.rerank_store = store
        return opened

    # -- contents ----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        return (f"SearchIndex({str(self.index_dir)!r}, count={self.count}, dim={self.dim}, "
                f"embedder={self.embedder_name!r}, faiss={self.faiss_params.get('type')!r})")

    @property
    def embedder_name(self) -> str:
        """Name of the embedder that built the index."""
        return str(self.record["embedder"].get("name"))

    @property
    def faiss_params(self) -> dict[str, Any]:
        """FAISS type and parameters (from ``index.json``)."""
        return dict(self.record.get("faiss") or {})

    def paths(self) -> list[str]:
        """Absolute image paths, in id order."""
        return list(self._paths)

    def sha256s(self) -> list[str]:
        """SHA-256 of each indexed file, in id order."""
        return list(self._shas)

    def _load_labels(self) -> dict[str, list[str | None]]:
        if self._labels is None:
            import pyarrow.parquet as pq

            if self.label_columns:
                t = pq.read_table(self.index_dir / "vectors.parquet", columns=self.label_columns)
                self._labels = {c: t.column(c).to_pylist() for c in self.label_columns}
            else:
                self._labels = {}
        return self._labels

    def labels(self, column: str) -> list[str | None]:
        """Values of one label column, in id order (``None`` where an image has none).

        Raises:
            InvalidParameterError: no such column (the message lists the columns there are).
        """
        cols = self._load_labels()
        if column not in cols:
            raise InvalidParameterError(f"no label column {column!r} in the index (columns: "
                                        f"{', '.join(self.label_columns) or 'none'})")
        return list(cols[column])

    def labels_at(self, i: int) -> dict[str, str]:
        """Labels of image ``i`` (empty values left out)."""
        return {c: x for c, v in self._load_labels().items() if (x := v[i]) is not None}

    def vectors(self) -> np.ndarray:
        """All vectors, ``(count, dim)`` float32, in id order."""
        if self._vectors is None:
            import pyarrow.parquet as pq

            t = pq.read_table(self.index_dir / "vectors.parquet", columns=["vector"])
            self._vectors = vectors_from_column(t.column("vector"), self.dim)
        return self._vectors

    def find(self, path: str | os.PathLike[str]) -> int | None:
        """Id of an image in the index: by absolute path, else by content (SHA-256); ``None`` when absent."""
        i = self._row_of_path.get(resolve_path(path))
        if i is not None:
            return i
        try:
            sha = sha256_file(path)
        except OSError:
            return None
        with contextlib.suppress(ValueError):
            return self._shas.index(sha)
        return None

    def embedder(self) -> Embedder:
        """The embedder that built the index, rebuilt from ``index.json`` (for embedding queries)."""
        if self._embedder is None:
            self._embedder = embedder_from_record(self.record["embedder"])
        return self._embedder

    # -- queries -----------------------------------------------------------------------------------

    def search_ids(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Raw FAISS answer: ``(scores, ids)``, each ``(nq, min(k, count))``; id ``-1`` where fewer were found."""
        q = np.asarray(vectors, dtype=np.float32)
        if q.ndim == 1:
            q = q[None, :]
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise InvalidParameterError(f"query vectors of shape {q.shape}: need (n, {self.dim})")
        if int(k) < 1:
            raise InvalidParameterError(f"k = {k}: need at least 1")
        q = np.ascontiguousarray(l2_normalise(q))
        return self._index.search(q, min(int(k), self.count))

    def search(self, vectors: np.ndarray, k: int = 10) -> list[list[Hit]]:
        """The ``k`` nearest images of each query vector by cosine similarity.

        Args:
            vectors: ``(nq, dim)`` or ``(dim,)`` query vectors (normalised here).
            k: results per query (at most the index size).

        Returns:
            One list of :class:`Hit` per query, best first.
        """
        scores, ids = self.search_ids(vectors, k)
        out = []
        for srow, irow in zip(scores, ids, strict=True):
            hits: list[Hit] = []
            for s, i in zip(srow, irow, strict=True):
                if i < 0:
                    continue
                hits.append(Hit(self._paths[i], float(s), len(hits) + 1, self.labels_at(int(i))))
            out.append(hits)
        return out

    def embed_query(self, path: str | os.PathLike[str], embedder: Embedder | None = None) -> np.ndarray:
        """Vector ``(dim,)`` of a query image, made by the index's own embedder.

        Raises:
            InputNotFoundError: no such file.
            UnreadableInputError: the image cannot be read.
            InvalidParameterError: ``embedder`` is not the one that built the index.
        """
        p = Path(path).expanduser()
        if not p.exists():
            raise InputNotFoundError(f"{p}: no such file")
        if embedder is None:
            emb = self.embedder()
        else:
            if not same_embedder(embedder_record(embedder), self.record["embedder"]):
                raise InvalidParameterError(f"embedder {embedder.name!r} is not the one that built {self.index_dir} "
                                            f"({self.embedder_name!r}); leave it out to use the index's own")
            emb = embedder
        batch = emb.embed_paths([str(p)])
        if batch.failures or batch.vectors.shape[0] != 1:
            reason = batch.failures[0][1] if batch.failures else "no vector"
            raise UnreadableInputError(reason if str(p) in reason else f"{p}: {reason}")
        return np.asarray(batch.vectors[0], dtype=np.float32)

    def search_image(self, path: str | os.PathLike[str], k: int = 10, embedder: Embedder | None = None) -> list[Hit]:
        """The ``k`` images most similar to an image file (embedded with the index's embedder)."""
        return self.search(self.embed_query(path, embedder), k)[0]

