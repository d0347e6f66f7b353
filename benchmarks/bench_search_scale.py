"""Similarity search at scale (issue 5): exact vs approximate FAISS indexes, latency and recall@10.

Two synthetic collections of L2-normalised float32 vectors (512-d by default, seeded):

  a. random: ``--n-random`` (default 1 000 000) vectors uniform on the unit sphere (normalised
     Gaussians). The hardest case for approximate search: no structure, every distance alike.
  b. real-feature-like: ``--n-real`` (default 100 000) vectors from a mixture of ``--clusters``
     (default 300) Gaussian clusters with Zipf-like sizes (weight of cluster i ∝ 1 / (i + 10)), living in
     a random ``--subspace`` (default 64)-dimensional subspace of R^512 (centres N(0, I), spread 0.6 per
     axis), plus a common offset (CNN features after ReLU share a large mean direction; norm 4) and
     isotropic noise 0.05 per axis in all 512 dimensions, then L2-normalised. Queries are fresh draws from
     the same mixture: their nearest neighbour lies at cosine ≈ 0.85, the 10th at ≈ 0.81, two random
     vectors at ≈ 0.16 (like image features: a low intrinsic dimension, clusters, a shared direction).

For each collection: exact search (``IndexFlatIP``), HNSW (``IndexHNSWFlat``, inner product) for each
``M:efConstruction`` pair of ``--hnsw`` (default ``32:80``, artlens' own) at each efSearch of ``--ef``,
(random data, unless ``--no-ivf``) IVF (``IVF{nlist},Flat``, nlist ``--nlist`` or ≈ 4·√n) at each
nprobe of ``--nprobe``, and the ``pq`` index (PQ fast-scan of every code, then exact re-ranking of
``rerank``·k candidates) at each value of ``--pq-rerank``; all built by
:func:`artlens.paintings.search.build_faiss_index`, the code ``artlens index`` runs. Reported: build
time (all threads), single-query latency p50 / p99 over ``--queries`` queries (default 1 000) searched
one at a time with 1 thread and with all threads, and recall@10 against the exact top 10. With two
or more threads the pq index is also measured cut into one shard per thread (``pq/2`` on 2 cores,
:func:`artlens.paintings.search.shard_pq_scan`, what :meth:`SearchIndex.open` does with a pq index
of 100 000 vectors or more): one query then scans on every thread, so it has no 1-thread figure.

Target (issue 5): p50 <= 10 ms at recall@10 >= 0.95.

``--store N`` (issue 20) measures instead the re-ranking store of a pq index folder of N vectors
(``--store-data random`` or ``feature-like``): the folder is written as ``artlens index`` writes it
(``vectors.parquet`` with a path and SHA-256 per row, ``index.faiss``, ``vectors.f32.npy``,
``index.json``), then a fresh process per variant opens it with :meth:`SearchIndex.open`
(``rerank_store="ram"`` or ``"memmap"``; FAISS threads ``--store-threads``, 2 = sharded, 1 = one
unsplit index) and searches ``--queries`` queries one at a time (k = 10). Reported per variant: open
time, RSS after the imports, after open and after the queries (anonymous and file-backed pages
apart: /proc/self/status RssAnon / RssFile), peak RSS (VmHWM), latency p50 / p99 (and the p50 of
the second half of the queries, when more of a memory map's pages are already mapped) and recall@10
against exact search. ``memmap cold`` first evicts ``vectors.f32.npy`` from the page cache
(``posix_fadvise(DONTNEED)``, that file only), so its queries read the rows from disk; ``memmap``
maps it with ``MADV_RANDOM`` (artlens' default: one page per fault), ``memmap read-ahead`` without
(the kernel's read-ahead: neighbouring rows come in too).

Findings that shaped artlens' defaults (``artlens.paintings.search``): on structureless vectors the
HNSW graph needs more links (``--hnsw 32:80,64:200``: M = 64 roughly halves the recall gap at the
same efSearch), while feature-like vectors reach recall 1.0 with M = 32; an L2 graph over the same
normalised vectors ranks identically to the inner-product one (same recall and speed).

    python benchmarks/bench_search_scale.py [--n-random 1000000] [--n-real 100000] [--dim 512]
        [--queries 1000] [--ef 64,128,256,512] [--nprobe 16,64,256,1024] [--hnsw 32:80,64:200] [--no-ivf]
        [--pq-rerank 100,300,500,1000]
    python benchmarks/bench_search_scale.py --store 1000000 [--store-data random] [--store-threads 2,1]
        [--queries 200]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

from artlens.paintings.search import build_faiss_index, recall_at_k, shard_pq_scan

TARGET_P50_MS = 10.0
TARGET_RECALL = 0.95


def _normalise(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def random_sphere(n: int, dim: int, seed: int, chunk: int = 100_000) -> np.ndarray:
    """``n`` vectors uniform on the unit sphere of R^dim, made chunk by chunk (float32 throughout)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    for i in range(0, n, chunk):
        block = rng.standard_normal((min(chunk, n - i), dim), dtype=np.float32)
        out[i:i + block.shape[0]] = _normalise(block)
    return out


class FeatureLike:
    """The mixture of the docstring (b): clusters in a low-dimensional subspace + common offset + noise."""

    def __init__(self, dim: int, clusters: int, subspace: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.basis = np.linalg.qr(rng.standard_normal((dim, subspace)))[0].astype(np.float32).T  # (s, dim)
        self.centres = rng.standard_normal((clusters, subspace)).astype(np.float32)
        w = 1.0 / (np.arange(clusters) + 10.0)
        self.weights = w / w.sum()
        offset = rng.standard_normal(dim).astype(np.float32)
        self.offset = 4.0 * offset / np.linalg.norm(offset)
        self.dim, self.subspace = dim, subspace

    def sample(self, n: int, seed: int, chunk: int = 100_000) -> np.ndarray:
        rng = np.random.default_rng(seed)
        out = np.empty((n, self.dim), dtype=np.float32)
        for i in range(0, n, chunk):
            m = min(chunk, n - i)
            c = rng.choice(len(self.weights), size=m, p=self.weights)
            z = self.centres[c] + 0.6 * rng.standard_normal((m, self.subspace), dtype=np.float32)
            x = z @ self.basis + self.offset + 0.05 * rng.standard_normal((m, self.dim), dtype=np.float32)
            out[i:i + m] = _normalise(x)
        return out


def latencies_ms(index, queries: np.ndarray, k: int, threads: int) -> np.ndarray:
    """Search the queries one at a time; wall time of each, ms."""
    faiss.omp_set_num_threads(threads)
    index.search(queries[:1], k)  # warm-up
    out = np.empty(len(queries))
    for i in range(len(queries)):
        t0 = time.perf_counter()
        index.search(queries[i:i + 1], k)
        out[i] = (time.perf_counter() - t0) * 1000
    return out


def measure(name: str, index, params: str, build_s: float, queries: np.ndarray, exact_ids: np.ndarray | None,
            k: int, all_threads: int, one_thread: bool = True) -> dict:
    """Latency with 1 thread (unless ``one_thread`` is False: an index that always runs its own threads)
    and with all threads, and recall@k against ``exact_ids``."""
    one = latencies_ms(index, queries, k, 1) if one_thread else np.full(1, np.nan)
    many = latencies_ms(index, queries, k, all_threads)
    faiss.omp_set_num_threads(all_threads)
    ids = index.search(queries, k)[1]
    recall = 1.0 if exact_ids is None else recall_at_k(ids, exact_ids)
    row = {"index": name, "params": params, "build_s": build_s,
           "p50_1": float(np.percentile(one, 50)), "p99_1": float(np.percentile(one, 99)),
           "p50_all": float(np.percentile(many, 50)), "p99_all": float(np.percentile(many, 99)),
           "recall": recall}
    best_p50 = float(np.nanmin([row["p50_1"], row["p50_all"]]))
    row["target"] = "met" if best_p50 <= TARGET_P50_MS and recall >= TARGET_RECALL else "-"
    print(f"  {name:<6} {params:<28} build {build_s:7.1f} s  p50/p99 1 thread {row['p50_1']:7.2f} / "
          f"{row['p99_1']:7.2f} ms  all {row['p50_all']:7.2f} / {row['p99_all']:7.2f} ms  recall@{k} {recall:.3f}",
          flush=True)
    return row


def run_dataset(label: str, base: np.ndarray, queries: np.ndarray, args: argparse.Namespace, ivf: bool) -> list[dict]:
    threads = args.threads
    faiss.omp_set_num_threads(threads)
    rows = []
    print(f"\n[{label}] {base.shape[0]:,} x {base.shape[1]} vectors, {len(queries)} queries", flush=True)
    t0 = time.perf_counter()
    flat, _ = build_faiss_index(base, "flat")
    build = time.perf_counter() - t0
    exact = flat.search(queries, args.k)[1]
    rows.append({"data": label, **measure("flat", flat, "exact", build, queries, None, args.k, threads)})
    del flat
    gc.collect()

    for m, efc in args.hnsw:
        faiss.omp_set_num_threads(threads)
        t0 = time.perf_counter()
        hnsw, p = build_faiss_index(base, "hnsw", hnsw_m=m, ef_construction=efc)
        build = time.perf_counter() - t0
        for ef in args.ef:
            faiss.downcast_index(hnsw).hnsw.efSearch = ef
            rows.append({"data": label, **measure("hnsw", hnsw, f"M {p['M']} efC {efc} efS {ef}", build, queries,
                                                  exact, args.k, threads)})
        del hnsw
        gc.collect()

    if ivf:
        faiss.omp_set_num_threads(threads)
        t0 = time.perf_counter()
        index, p = build_faiss_index(base, "ivf", nlist=args.nlist)
        build = time.perf_counter() - t0
        for nprobe in args.nprobe:
            faiss.extract_index_ivf(index).nprobe = min(nprobe, p["nlist"])
            rows.append({"data": label, **measure("ivf", index, f"nlist {p['nlist']} nprobe {min(nprobe, p['nlist'])}",
                                                  build, queries, exact, args.k, threads)})
        del index
        gc.collect()

    if args.pq_rerank:
        faiss.omp_set_num_threads(threads)
        t0 = time.perf_counter()
        index, p = build_faiss_index(base, "pq", seed=args.seed)
        build = time.perf_counter() - t0
        for rerank in args.pq_rerank:
            faiss.downcast_index(index).k_factor = rerank
            rows.append({"data": label, **measure("pq", index, f"PQ{p['M']}x4fs rerank {rerank}", build, queries,
                                                  exact, args.k, threads)})
        if threads >= 2:  # what SearchIndex.open does with a large pq index: one query's scan on every thread
            t0 = time.perf_counter()
            sharded = shard_pq_scan(index, threads)
            split = time.perf_counter() - t0
            del index
            gc.collect()
            print(f"  pq index cut into {sharded.parts} shards in {split:.1f} s", flush=True)
            for rerank in args.pq_rerank:
                sharded.rerank = rerank
                rows.append({"data": label, **measure(f"pq/{sharded.parts}", sharded,
                                                      f"PQ{p['M']}x4fs rerank {rerank}", build, queries, exact,
                                                      args.k, threads, one_thread=False)})
            index = sharded
        del index
        gc.collect()
    return rows


def _status_mb() -> dict[str, float]:
    """RSS figures of this process from /proc/self/status, MB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


def write_store_folder(folder: Path, base: np.ndarray, seed: int, chunk: int = 100_000) -> None:
    """A pq index folder over ``base`` laid out as ``build_index`` writes it (paths and hashes made up)."""
    import pyarrow.parquet as pq

    from artlens.paintings.search.store import FORMAT_VERSION, INDEX_FORMAT, vector_table, write_rerank_vectors

    n, dim = base.shape
    folder.mkdir(parents=True, exist_ok=True)
    writer = None
    for i in range(0, n, chunk):
        rows = range(i, min(i + chunk, n))
        table = vector_table([f"/collection/images/{r // 1000:04d}/painting_{r:08d}.jpg" for r in rows],
                             [f"{r:064x}" for r in rows], base[i:i + chunk], None, [])
        writer = writer or pq.ParquetWriter(folder / "vectors.parquet", table.schema)
        writer.write_table(table)
        del table
    assert writer is not None
    writer.close()
    t0 = time.perf_counter()
    index, params = build_faiss_index(base, "pq", seed=seed)
    print(f"  pq index built in {time.perf_counter() - t0:.1f} s", flush=True)
    faiss.write_index(index, str(folder / "index.faiss"))
    del index
    gc.collect()
    write_rerank_vectors(folder / "vectors.f32.npy", base)
    record = {"name": "synthetic", "config": {}, "checksum": None, "dim": dim}
    info = {"format": INDEX_FORMAT, "format_version": FORMAT_VERSION, "embedder": record, "dim": dim, "count": n,
            "faiss": params, "label_columns": []}
    (folder / "index.json").write_text(json.dumps(info), encoding="utf-8")


def store_child(spec: dict) -> None:
    """One variant of ``--store``, in a fresh process: open, query, print one JSON line."""
    from artlens.paintings.search import SearchIndex, store

    store.RERANK_MADVISE_RANDOM = spec.get("random", True)
    folder = Path(spec["folder"])
    if spec.get("evict"):
        fd = os.open(folder / "vectors.f32.npy", os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
    queries = np.load(folder / "queries.npy")
    exact = np.load(folder / "exact.npy")
    before = _status_mb()
    t0 = time.perf_counter()
    idx = SearchIndex.open(folder, rerank_store=spec["store"])
    open_s = time.perf_counter() - t0
    opened = _status_mb()
    ms = np.empty(len(queries))
    ids = np.empty((len(queries), 10), dtype=np.int64)
    for i in range(len(queries)):
        t0 = time.perf_counter()
        ids[i] = idx.search_ids(queries[i], 10)[1][0]
        ms[i] = (time.perf_counter() - t0) * 1000
    after = _status_mb()
    sharded = type(idx._index).__name__ == "_ShardedPQ"
    print(json.dumps({"store": idx.rerank_store, "sharded": sharded, "open_s": open_s, "before": before,
                      "opened": opened, "after": after, "p50": float(np.percentile(ms, 50)),
                      "p99": float(np.percentile(ms, 99)), "first10": float(np.mean(ms[:10])),
                      "p50_late": float(np.percentile(ms[len(ms) // 2:], 50)),
                      "recall": recall_at_k(ids, exact)}))


def run_store(args: argparse.Namespace) -> None:
    n, dim = args.store, args.dim
    with tempfile.TemporaryDirectory(prefix="bench_store_", dir=args.store_dir) as tmp:
        folder = Path(tmp) / "index"
        t0 = time.perf_counter()
        if args.store_data == "random":
            base = random_sphere(n, dim, args.seed)
            queries = random_sphere(args.queries, dim, args.seed + 1)
        else:
            gen = FeatureLike(dim, args.clusters, args.subspace, args.seed + 2)
            base, queries = gen.sample(n, args.seed + 3), gen.sample(args.queries, args.seed + 4)
        print(f"[store] {n:,} x {dim} {args.store_data} vectors made in {time.perf_counter() - t0:.1f} s", flush=True)
        write_store_folder(folder, base, args.seed)
        flat, _ = build_faiss_index(base, "flat")
        np.save(folder / "exact.npy", flat.search(queries, 10)[1])
        np.save(folder / "queries.npy", queries)
        del base, flat
        gc.collect()
        sizes = {p.name: p.stat().st_size / 2**20 for p in folder.iterdir()}
        print("  folder: " + ", ".join(f"{k} {v:,.0f} MB" for k, v in sorted(sizes.items())), flush=True)
        rows = []
        for threads in args.store_threads:
            for store, evict, rnd in (("ram", False, True), ("memmap", True, True), ("memmap", False, True),
                                      ("memmap", True, False), ("memmap", False, False)):
                env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
                spec = json.dumps({"folder": str(folder), "store": store, "evict": evict, "random": rnd})
                done = subprocess.run([sys.executable, __file__, "--_store-child", spec], env=env, check=True,
                                      capture_output=True, text=True)
                r = json.loads(done.stdout.strip().splitlines()[-1])
                r.update(threads=threads, label=f"{store}{'' if store == 'ram' or rnd else ' read-ahead'}"
                                                f"{' cold' if evict else ''}")
                rows.append(r)
                print(f"  {r['label']:<12} {threads} thr sharded={r['sharded']}: open {r['open_s']:.1f} s, "
                      f"RSS after open {r['opened']['VmRSS']:.0f} MB, after queries {r['after']['VmRSS']:.0f} MB "
                      f"(anon {r['after']['RssAnon']:.0f}, file {r['after']['RssFile']:.0f}), peak "
                      f"{r['after']['VmHWM']:.0f} MB; p50 {r['p50']:.2f} p99 {r['p99']:.2f} ms, first 10 "
                      f"{r['first10']:.1f} ms, p50 of the 2nd half {r['p50_late']:.2f} ms; "
                      f"recall@10 {r['recall']:.3f}", flush=True)
    per_m = 1e6 / n
    print(f"\n{n:,} x {dim} {args.store_data} vectors, {args.queries} single queries, k = 10, faiss "
          f"{faiss.__version__}, {os.cpu_count()} cores. RSS in MB (per million vectors: x {per_m:g}); "
          "'base' = after the imports, before open")
    header = ("| store | threads | sharded | open s | base RSS | RSS after open | RSS after queries (anon + file) | "
              "peak RSS | (peak - base) per M | p50 ms | p99 ms | first 10 ms | p50 2nd half ms | recall@10 |")
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    for r in rows:
        b, o, a = r["before"], r["opened"], r["after"]
        print(f"| {r['label']} | {r['threads']} | {'yes' if r['sharded'] else 'no'} | {r['open_s']:.1f} | "
              f"{b['VmRSS']:.0f} | {o['VmRSS']:.0f} | {a['VmRSS']:.0f} ({a['RssAnon']:.0f} + {a['RssFile']:.0f}) | "
              f"{a['VmHWM']:.0f} | {(a['VmHWM'] - b['VmRSS']) * per_m:.0f} | {r['p50']:.2f} | {r['p99']:.2f} | "
              f"{r['first10']:.1f} | {r['p50_late']:.2f} | {r['recall']:.3f} |")
    print("\ncommand: python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *sys.argv[1:]]))


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _pairs(text: str) -> list[tuple[int, int]]:
    out = []
    for item in text.split(","):
        if item.strip():
            m, _, efc = item.partition(":")
            out.append((int(m), int(efc or 80)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-random", type=int, default=1_000_000, help="random vectors (0: skip)")
    ap.add_argument("--n-real", type=int, default=100_000, help="feature-like vectors (0: skip)")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--ef", type=_ints, default=[64, 128, 256, 512], help="HNSW efSearch values, comma-separated")
    ap.add_argument("--hnsw", type=_pairs, default=[(32, 80)],
                    help="HNSW graphs to build: M:efConstruction pairs, comma-separated (default 32:80)")
    ap.add_argument("--nlist", type=int, default=None, help="IVF lists (default about 4 sqrt(n))")
    ap.add_argument("--nprobe", type=_ints, default=[16, 64, 256, 1024], help="IVF nprobe values, comma-separated")
    ap.add_argument("--no-ivf", action="store_true", help="skip IVF on the random data")
    ap.add_argument("--pq-rerank", type=_ints, default=[100, 300, 500, 1000],
                    help="pq index: candidates re-ranked per result, comma-separated ('' skips the pq index)")
    ap.add_argument("--clusters", type=int, default=300)
    ap.add_argument("--subspace", type=int, default=64)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="'all threads' (default: all cores)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--store", type=int, default=0,
                    help="measure the pq re-ranking stores (in RAM, memory-mapped) on an index folder of this many "
                         "vectors, instead of the index comparison")
    ap.add_argument("--store-data", choices=("random", "feature-like"), default="random")
    ap.add_argument("--store-threads", type=_ints, default=[2, 1],
                    help="FAISS threads of the --store runs (2: the scan sharded; 1: one unsplit index)")
    ap.add_argument("--store-dir", default=None, help="where the --store folder is made (default: the temp dir)")
    ap.add_argument("--_store-child", dest="store_child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.store_child:
        store_child(json.loads(args.store_child))
        return
    if args.store:
        run_store(args)
        return

    rows: list[dict] = []
    if args.n_random > 0:
        t0 = time.perf_counter()
        base = random_sphere(args.n_random, args.dim, args.seed)
        queries = random_sphere(args.queries, args.dim, args.seed + 1)
        print(f"random data made in {time.perf_counter() - t0:.1f} s", flush=True)
        rows += run_dataset("random", base, queries, args, ivf=not args.no_ivf)
        del base
        gc.collect()
    if args.n_real > 0:
        gen = FeatureLike(args.dim, args.clusters, args.subspace, args.seed + 2)
        base = gen.sample(args.n_real, args.seed + 3)
        queries = gen.sample(args.queries, args.seed + 4)
        rows += run_dataset("feature-like", base, queries, args, ivf=False)

    print(f"\nTarget: p50 <= {TARGET_P50_MS:g} ms at recall@{args.k} >= {TARGET_RECALL}; faiss {faiss.__version__}, "
          f"{args.threads} threads ('all'), {os.cpu_count()} cores")
    header = (f"| data | index | parameters | build s | p50 ms 1 thr | p99 ms 1 thr | p50 ms all | p99 ms all | "
              f"recall@{args.k} | target |")
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    for r in rows:
        print(f"| {r['data']} | {r['index']} | {r['params']} | {r['build_s']:.1f} | {r['p50_1']:.2f} | "
              f"{r['p99_1']:.2f} | {r['p50_all']:.2f} | {r['p99_all']:.2f} | {r['recall']:.3f} | {r['target']} |")
    print("\ncommand: python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *sys.argv[1:]]))


if __name__ == "__main__":
    main()
