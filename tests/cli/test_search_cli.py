"""``artlens index`` / ``search`` / ``map`` end to end (in-process), with the training-free colour-histogram
embedder on small synthetic images."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artlens.paintings.embedders import ColourHistogramEmbedder, register_embedder

# artist -> (base colour, stripe direction); the influence graph links monet - turner - constable
ARTISTS = {"monet": ((200, 80, 60), 0), "turner": ((190, 95, 70), 0), "constable": ((60, 90, 200), 1),
           "hopper": ((70, 170, 70), 2)}


def _image(path: Path, rgb: tuple[int, int, int], orientation: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:48, 0:64]
    stripes = [np.sin(xx / 2.0), np.sin(yy / 2.0), np.sin((xx + yy) / 2.0)][orientation]
    arr = np.asarray(rgb, float)[None, None, :] + 30 * stripes[..., None] + rng.normal(0, 12, (48, 64, 3))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(path)


@pytest.fixture
def collection(tmp_path: Path) -> Path:
    """``coll/img/<artist>_<i>.png`` with ``coll/labels.csv`` (path, artist, style)."""
    root = tmp_path / "coll"
    rows = []
    for j, (artist, (rgb, orient)) in enumerate(ARTISTS.items()):
        for i in range(3):
            _image(root / "img" / f"{artist}_{i}.png", rgb, orient, seed=10 * j + i)
            rows.append({"path": f"img/{artist}_{i}.png", "artist": artist, "style": f"style{j % 2}"})
    with open(root / "labels.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["path", "artist", "style"])
        w.writeheader()
        w.writerows(rows)
    return root


def _index(cli, collection: Path, idx: Path, *extra: str) -> tuple[int, str, str]:
    return cli("index", collection, "--index", idx, "--embedder", "colour-histogram", "--batch-size", "5", *extra)


def test_index_then_search_finds_the_query_first(cli, collection: Path, tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    code, out, err = _index(cli, collection, idx, "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary == {"index": str(idx), "images": 12, "reused": 0, "failures": 0, "embedder": "colour-histogram",
                       "dim": 136, "faiss": summary["faiss"], "catalog_analysis_id": summary["catalog_analysis_id"]}
    assert summary["faiss"]["type"] == "flat"
    # rerun without --embedder: the index's own is used, everything reused
    code, out, err = cli("index", collection, "--index", idx, "--json")
    assert code == 0, err
    assert json.loads(out)["reused"] == 12

    query = collection / "img" / "constable_1.png"
    code, out, err = cli("search", query, "--index", idx, "-k", "3", "--json")
    assert code == 0, err
    res = json.loads(out)
    assert set(res) >= {"results", "index", "embedder", "reranked"} and res["reranked"] is False
    first = res["results"][0]
    assert first["path"] == str(query.resolve()) and first["score"] == pytest.approx(1.0, abs=1e-5)
    assert first["rank"] == 1 and first["cosine"] == first["score"] and first["artist"] == "constable"
    assert [r["rank"] for r in res["results"]] == [1, 2, 3]
    assert all(r["artist"] == "constable" for r in res["results"])

    code, out, err = cli("search", query, "--index", idx, "-k", "2")
    assert code == 0 and "constable_1.png" in out.splitlines()[1]


def test_search_with_influence_rerank_and_report(cli, collection: Path, tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    assert _index(cli, collection, idx)[0] == 0
    graph = tmp_path / "influence.csv"
    graph.write_text("source,target\nMonet,Turner\nTurner,Constable\n")
    query = collection / "img" / "monet_0.png"
    report = tmp_path / "out" / "report.html"
    code, out, err = cli("search", query, "--index", idx, "-k", "5", "--influence", graph, "--report", report,
                         "--json")
    assert code == 0, err
    res = json.loads(out)
    assert res["reranked"] is True and res["query_artist"] == "monet"
    hits = res["results"]
    assert hits[0]["path"] == str(query.resolve()) and hits[0]["graph_distance"] == 0
    assert hits[0]["score"] == pytest.approx(3 * hits[0]["cosine"])  # same artist: 1 + 2·weight
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    for h in hits:
        assert h["graph_distance"] == {"monet": 0, "turner": 1, "constable": 2}.get(h["artist"])
    html = report.read_text()
    assert html.count("data:image/png;base64,") == 6  # query + 5 results
    assert "colour-histogram" in html and "graph distance" in html and "<script" not in html

    # a copy of the query outside the index: its artist is found by content
    copy = tmp_path / "copy.png"
    shutil.copy(query, copy)
    code, out, err = cli("search", copy, "--index", idx, "--influence", graph, "--json")
    assert code == 0 and json.loads(out)["query_artist"] == "monet"

    # an artist missing from the graph: a notice, no re-ranking
    code, out, err = cli("search", collection / "img" / "hopper_0.png", "--index", idx, "--influence", graph,
                         "--json")
    assert code == 0, err
    assert json.loads(out)["reranked"] is False
    assert "notice:" in err and "'hopper' is not in the influence graph" in err


def test_map_command(cli, collection: Path, tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    assert _index(cli, collection, idx)[0] == 0
    code, out, err = cli("map", "--index", idx, "--out", tmp_path / "map.png", "--label-column", "artist",
                         "--no-thumbnails", "--json")
    assert code == 0, err
    res = json.loads(out)
    assert res["images"] == 12 and res["method"] == "tsne" and Path(res["png"]).is_file()
    with open(res["csv"]) as fh:
        assert len(list(csv.DictReader(fh))) == 12


def test_default_embedder_missing_suggests_the_colour_histogram(cli, collection: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from artlens.paintings import embedders

    only = {"colour-histogram": embedders._REGISTRY["colour-histogram"]}
    monkeypatch.setattr(embedders, "_REGISTRY", only)
    monkeypatch.setattr(embedders, "_plugins_loaded", True)  # as if artlens.paintings.features did not exist
    code, out, err = cli("index", collection, "--index", tmp_path / "idx")
    assert code == 7 and "'lite0'" in err and "--embedder colour-histogram" in err
    assert not (tmp_path / "idx").exists()


def test_bad_input_gives_one_line_errors(cli, collection: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    code, out, err = _index(cli, tmp_path / "empty", tmp_path / "e")
    assert code == 7 and err.startswith("error:") and "no images" in err

    code, out, err = cli("index", collection, "--index", tmp_path / "x", "--embedder", "nope")
    assert code == 7 and "colour-histogram" in err

    (collection / "img" / "broken.jpg").write_bytes(b"broken")
    with open(collection / "labels.csv", "a") as fh:
        fh.write("img/broken.jpg,nobody,style0\nimg/gone.png,nobody,style0\n")
    idx = tmp_path / "idx"
    code, out, err = _index(cli, collection, idx, "--json")
    assert code == 0 and json.loads(out)["failures"] == 2 and json.loads(out)["images"] == 12
    assert "notice: 2 of 14 images could not be read" in err
    with open(idx / "failures.csv") as fh:
        assert sorted(Path(r["path"]).name for r in csv.DictReader(fh)) == ["broken.jpg", "gone.png"]

    register_embedder("test-colour-lab")(lambda: ColourHistogramEmbedder(space="lab"))
    code, out, err = cli("index", collection, "--index", idx, "--embedder", "test-colour-lab")
    assert code == 7 and "--rebuild" in err and "'lab'" not in err and '"lab"' in err

    faiss_file = idx / "index.faiss"
    faiss_file.write_bytes(faiss_file.read_bytes()[:50])
    code, out, err = cli("search", collection / "img" / "monet_0.png", "--index", idx)
    assert code == 4 and "damaged" in err and "--rebuild" in err and len(err.strip().splitlines()) == 1
    assert "`artlens index COLLECTION --index DIR`" in err and "build_index" not in err  # the command, not the call
    (idx / "index.json").write_text("garbage")
    code, out, err = cli("map", "--index", idx, "--out", tmp_path / "m.png")
    assert code == 4 and "index.json" in err and "--rebuild" in err

    code, out, err = cli("search", tmp_path / "nope.png", "--index", tmp_path / "no-index")
    assert code == 3
    code, out, err = cli("search", collection / "img" / "monet_0.png", "--index", tmp_path / "no-index")
    assert code == 3 and "no such index folder (build one with `artlens index COLLECTION --index DIR`)" in err


def test_bf16_index_records_its_precision_and_refuses_to_mix(cli, collection: Path, tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    code, out, err = cli("index", collection, "--index", idx, "--embedder", "lite0-global", "--precision", "bf16",
                         "--json")
    assert code == 0, err
    assert json.loads(out)["images"] == 12
    record = json.loads((idx / "index.json").read_text())
    assert record["embedder"]["config"]["precision"] == "bf16"
    code, out, err = cli("search", collection / "img" / "hopper_1.png", "--index", idx, "-k", "3", "--json")
    assert code == 0, err
    assert Path(json.loads(out)["results"][0]["path"]).name == "hopper_1.png"  # query embedded in bf16 too
    code, out, err = cli("index", collection, "--index", idx, "--precision", "fp32")
    assert code == 7 and "--rebuild" in err  # fp32 vectors are not mixed into a bf16 index
    code, out, err = cli("index", collection, "--index", tmp_path / "x", "--precision", "fp16")
    assert code == 7 and "fp32 or bf16" in err
    code, out, err = _index(cli, collection, tmp_path / "y", "--precision", "bf16")
    assert code == 7 and "applies to the CNN backbone embedders" in err


def test_search_rerank_store_memmap_gives_the_in_ram_results(cli, collection: Path, tmp_path: Path) -> None:
    idx = tmp_path / "pq"
    code, out, err = _index(cli, collection, idx, "--index-type", "pq")
    assert code == 0, err
    assert (idx / "vectors.f32.npy").is_file()
    query = collection / "img" / "turner_2.png"
    answers = {}
    for store in ("ram", "memmap"):
        code, out, err = cli("search", query, "--index", idx, "-k", "6", "--rerank", "20", "--rerank-store", store,
                             "--json", "--no-catalog")
        assert code == 0, err
        answers[store] = [(r["path"], r["score"]) for r in json.loads(out)["results"]]
    assert answers["memmap"] == answers["ram"] and answers["ram"][0][0] == str(query.resolve())
    code, out, err = cli("search", query, "--index", idx, "--rerank-store", "disk")
    assert code == 7 and "--rerank-store 'disk': use one of auto, ram, memmap" in err
    assert len(err.strip().splitlines()) == 1
    code, out, err = _index(cli, collection, tmp_path / "flat")
    assert code == 0, err
    code, out, err = cli("search", query, "--index", tmp_path / "flat", "--rerank-store", "memmap")
    assert code == 7 and "--rerank-store 'memmap' is for pq indexes" in err and len(err.strip().splitlines()) == 1
