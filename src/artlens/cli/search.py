"""``artlens index``, ``artlens search``, ``artlens map``: embeddings index of a painting collection,
similarity search with optional influence-graph re-ranking, and a 2-D map of the collection."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import typer

from artlens.cli.choices import Engine, IndexType, MapMethod, Precision
from artlens.cli.common import choice_option, device_option, echo, echo_json, show_progress
from artlens.devices import check_device_spec

DEFAULT_EMBEDDER = "lite0"
CATALOG = typer.Option(None, "--catalog",
                       help="Catalog: SQLite file or postgresql:// URL (default $ARTLENS_CATALOG or ./artlens.db).")
NO_CATALOG = typer.Option(False, "--no-catalog", help="Do not record the analysis in the catalog.")


def _choose_embedder(name: str | None, index_dir: Path, rebuild: bool, precision: str | None = None):
    """The embedder to build with: ``name`` (its recorded config when the index already used it), else
    the one the index was built with, else :data:`DEFAULT_EMBEDDER`; ``precision`` (fp32 / bf16) is
    passed on when given (an index built otherwise then refuses to mix vectors)."""
    from artlens.errors import InvalidParameterError
    from artlens.paintings.embedders import create_embedder, list_embedders

    recorded = None
    if not rebuild:
        for fname, key in (("embedder.json", None), ("index.json", "embedder")):
            try:
                data = json.loads((index_dir / fname).read_text(encoding="utf-8"))
                recorded = data if key is None else data.get(key)
            except (OSError, ValueError, AttributeError):
                continue
            if isinstance(recorded, dict) and isinstance(recorded.get("name"), str):
                break
            recorded = None
    model = None
    if name and ":" in name:  # NAME:MODEL, e.g. swae:runs/swae/model (a trained encoder's folder)
        name, model = name.split(":", 1)
        if not model:
            raise InvalidParameterError(f"--embedder {name}: names no model folder; use {name}:FOLDER")
    chosen = name or (recorded["name"] if recorded else DEFAULT_EMBEDDER)
    config = dict(recorded.get("config") or {}) if recorded and recorded["name"] == chosen else {}
    if model is not None:
        config = {"model": model}
    if precision is not None:
        if precision == "fp32":
            config.pop("precision", None)
        else:
            config["precision"] = precision
    try:
        return create_embedder(chosen, **config)
    except InvalidParameterError as exc:
        if chosen not in list_embedders():
            hint = " (the CNN embedders come with artlens.paintings.features)" if chosen == DEFAULT_EMBEDDER else ""
            raise InvalidParameterError(f"{exc}{hint}; use --embedder colour-histogram for the training-free "
                                        f"colour and texture embedder") from None
        if config.get("precision") and "precision" in str(exc):
            raise InvalidParameterError(f"--precision applies to the CNN backbone embedders (lite0, lite0-global), "
                                        f"not to {chosen}") from None
        raise


def index(
    collection: Path = typer.Argument(..., help="Folder of images (searched recursively; a labels.csv in it gives "
                                                "labels) or a CSV file with a path/file column."),
    index_dir: Path = typer.Option(..., "--index", "-i", help="Index folder to write (resumes an interrupted build)."),
    embedder: str | None = typer.Option(None, "--embedder", "-e",
                                        help=f"Registered embedder (default: the index's own, else {DEFAULT_EMBEDDER}"
                                             "; colour-histogram needs no model; a trained encoder as "
                                             "dae:FOLDER or swae:FOLDER)."),
    batch_size: int = typer.Option(32, "--batch-size", help="Images per embedding call and per saved part."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Discard the folder's index and embed everything again."),
    index_type: str = choice_option("auto", "--index-type", choices=IndexType, checked_by_library=True,
                                   help="auto (exact below 50 000 images, HNSW above), flat, hnsw, ivf, or pq "
                                        "(compressed scan + exact re-ranking: builds in seconds, for "
                                        "millions of images)."),
    precision: str | None = choice_option(None, "--precision", choices=Precision,
                                         help="fp32 (default) or bf16 for the CNN embedders: about 1.8x faster "
                                              "on CPUs with bfloat16 units (AMX / AVX-512 BF16), vectors within "
                                              "cosine 0.999; an index keeps the precision it was built with."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
    catalog: str | None = CATALOG,
    no_catalog: bool = NO_CATALOG,
    device: str = device_option("CNN embedders"),
    engine: str = choice_option("local", "--engine", choices=Engine, checked_by_library=True,
                                help="Where the embedding runs: local (this machine) or ray."),
    ray_address: str | None = typer.Option(
        None, "--ray-address", help="--engine ray: auto, ray://HOST:PORT or HOST:PORT to join a running cluster "
                                    "(default: start a local one)."),
    workers: int = typer.Option(1, "--workers", help="Embedders at work at once, one --batch-size chunk each "
                                                     "(processes or Ray actors; 1: this process)."),
) -> None:
    """Embed every image of a collection once and build a similarity-search index."""
    from artlens.devices import place_extractor, resolve_device
    from artlens.engine import check_engine
    from artlens.paintings.embedders import embedder_record
    from artlens.paintings.search import build_index

    check_device_spec(device)
    check_engine(engine, workers, ray_address)
    emb = _choose_embedder(embedder, index_dir, rebuild, precision)
    torch_device = "cpu"
    if getattr(emb, "extractor", None) is not None:  # a CNN embedder: torch is loaded anyway
        torch_device = resolve_device(device)
        place_extractor(emb, torch_device)
    summary = build_index(collection, index_dir, emb, batch_size=batch_size, rebuild=rebuild,
                          progress=show_progress(as_json), index_type=index_type, engine=engine, workers=workers,
                          ray_address=ray_address, device=torch_device)
    result = summary.to_json()
    if not no_catalog:
        from artlens.catalog.record import Analysis, record

        parameters = {"collection": str(collection.resolve()), "embedder": embedder_record(emb),
                      "index_type": index_type, "batch_size": batch_size, "rebuild": rebuild}
        (result["catalog_analysis_id"],) = record(catalog, [Analysis(
            "paintings.index", parameters, summary.to_json(), [str(index_dir.resolve())],
            model_checksum=emb.checksum)])
    if as_json:
        echo_json(result)
        return
    skipped = f", {len(summary.failures)} skipped (see {index_dir / 'failures.csv'})" if summary.failures else ""
    echo(f"indexed {summary.images} images with {summary.embedder} ({summary.dim}-d): {summary.embedded} new "
         f"(embedded), {summary.reused} reused{skipped}")
    echo(f"index: {index_dir} (FAISS {summary.faiss.get('class')})")


def _artist_column(idx, wanted: str) -> str | None:
    if wanted in idx.label_columns:
        return wanted
    if wanted == "artist" and "label" in idx.label_columns:
        return "label"
    return None


def search(
    query: Path = typer.Argument(..., help="Query image."),
    index_dir: Path = typer.Option(..., "--index", "-i", help="Index folder (from 'artlens index')."),
    k: int = typer.Option(10, "-k", "--k", help="Number of results."),
    influence: Path | None = typer.Option(None, "--influence",
                                          help="Influence graph (.csv source,target or .graphml) to re-rank by."),
    influence_weight: float = typer.Option(1.0, "--influence-weight", help="Weight w in s * (1 + w / d)."),
    query_artist: str | None = typer.Option(None, "--query-artist",
                                            help="Artist of the query (default: its label when it is in the index)."),
    artist_column: str = typer.Option("artist", "--artist-column", help="Label column holding the artist "
                                                                        "(falls back on 'label')."),
    top: int = typer.Option(100, "--top", help="Results re-ranked by the influence graph."),
    repeat_damping: float = typer.Option(0.8, "--repeat-damping", help="Factor per extra result of one artist."),
    ef_search: int | None = typer.Option(None, "--ef-search", help="HNSW candidate list (recall vs speed)."),
    rerank: int | None = typer.Option(None, "--rerank", help="pq index: candidates re-scored exactly per result "
                                                             "(recall vs speed; default: the index's own, 500)."),
    rerank_store: str = typer.Option("auto", "--rerank-store",
                                     help="pq index: where the exact vectors for re-scoring live: ram, memmap "
                                          "(vectors.f32.npy memory-mapped, the same results) or auto (memmap from "
                                          "100 000 vectors)."),
    report: Path | None = typer.Option(None, "--report", help="Write a self-contained HTML page of the results."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as one JSON object."),
    catalog: str | None = CATALOG,
    no_catalog: bool = NO_CATALOG,
) -> None:
    """Find the images of an index most similar to a query image (cosine of embeddings)."""
    from artlens.errors import InvalidParameterError
    from artlens.paintings.search import SearchIndex

    if k < 1:
        raise InvalidParameterError(f"-k {k}: need at least 1")
    idx = SearchIndex.open(index_dir, ef_search=ef_search, rerank=rerank, rerank_store=rerank_store)
    graph = None
    if influence is not None:
        from artlens.paintings.influence import InfluenceGraph

        graph = InfluenceGraph.load(influence)
    elif query_artist:
        warnings.warn("--query-artist is only used with --influence", stacklevel=1)
    vector = idx.embed_query(query)
    hits = idx.search(vector, max(top, k) if graph is not None else k)[0]
    reranked = False
    note = None
    artist = query_artist
    col = _artist_column(idx, artist_column)
    if artist is None and col is not None:
        row = idx.find(query)
        if row is not None:
            artist = idx.labels_at(row).get(col)
    if graph is not None:
        from artlens.paintings.influence import rerank as rerank_by_influence  # not the --rerank option

        if col is None:
            cols = ", ".join(idx.label_columns) or "none"
            note = f"the index has no {artist_column!r} label column (columns: {cols})"
        elif not artist:
            note = "the query's artist is unknown (the image is not in the index); pass --query-artist NAME"
        if note:
            warnings.warn(f"results are not re-ranked: {note}", stacklevel=1)
            hits = hits[:k]
        elif col is not None and artist:  # both known once note is empty
            reranked = artist in graph
            if not reranked:
                note = f"query artist {artist!r} is not in the influence graph"
            hits = rerank_by_influence(hits, artist, graph, weight=influence_weight, top=top, k=k,
                                       repeat_damping=repeat_damping, artist_key=col)
    if report is not None:
        from artlens.report.search import write_search_report

        qrow = idx.find(query)
        write_search_report(
            report, query, hits, idx.record, index_dir=index_dir, reranked=reranked, rerank_note=note,
            rerank={"top": top, "weight": f"{influence_weight:g}", "damping": f"{repeat_damping:g}",
                    "graph": str(influence or "")},
            query_labels=idx.labels_at(qrow) if qrow is not None else None, query_artist=artist)
    result = {"results": [h.to_dict() for h in hits], "index": str(index_dir), "embedder": idx.embedder_name,
              "reranked": reranked, "query": str(query), "query_artist": artist}
    if not no_catalog:
        from artlens.catalog.record import Analysis, record

        parameters = {"index": str(index_dir.resolve()), "k": k, "influence": None if influence is None else
                      str(influence.resolve()), "influence_weight": influence_weight, "artist_column": artist_column,
                      "top": top, "repeat_damping": repeat_damping, "ef_search": ef_search, "rerank": rerank,
                      "embedder": idx.record.get("embedder")}
        (result["catalog_analysis_id"],) = record(catalog, [Analysis(
            "paintings.search", parameters, {**result, "rerank_note": note}, [str(report)] if report else [],
            image=query, model_checksum=(idx.record.get("embedder") or {}).get("checksum"))])
    if as_json:
        echo_json(result)
        return
    echo(f"{len(hits)} images most similar to {query.name} ({idx.embedder_name}, {idx.count} indexed"
               + (f", re-ranked by influence from {artist}" if reranked else "") + ")")
    for h in hits:
        extra = f"  d={h.graph_distance if h.graph_distance is not None else '-'}" if reranked else ""
        labels = ", ".join(f"{k_}={v}" for k_, v in h.labels.items())
        echo(f"{h.rank:>3}  {h.score:.4f}  cos {h.cosine:.4f}{extra}  {Path(h.path).name}"
                   + (f"  [{labels}]" if labels else ""))
    if report is not None:
        echo(f"report: {report}")


def map_(
    index_dir: Path = typer.Option(..., "--index", "-i", help="Index folder (from 'artlens index')."),
    out: Path = typer.Option(..., "--out", "-o", help="Figure to write (PNG)."),
    csv_out: Path | None = typer.Option(None, "--csv", help="Coordinates CSV (default: the figure's name, .csv)."),
    method: str = choice_option("tsne", "--method", choices=MapMethod, checked_by_library=True,
                                help="tsne, or umap (pip install artlens[umap])."),
    label_column: str | None = typer.Option(None, "--label-column", help="Colour the images by this label."),
    no_thumbnails: bool = typer.Option(False, "--no-thumbnails", help="Draw points instead of thumbnails."),
    seed: int = typer.Option(0, "--seed", help="Random state of the projection."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Draw a 2-D map (t-SNE or UMAP) of an indexed collection, with thumbnails or coloured points."""
    from artlens.paintings.maps import collection_map

    result = collection_map(index_dir, method=method, label_column=label_column, thumbnails=not no_thumbnails,
                            seed=seed, out_png=out, out_csv=csv_out)
    if as_json:
        payload = result.to_json()
        payload.update({"index": str(index_dir), "label_column": label_column})
        echo_json(payload)
        return
    echo(f"map of {len(result.paths)} images ({result.method}): {result.png}")
    echo(f"coordinates: {result.csv}")
