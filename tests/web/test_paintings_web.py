"""The web app's painting analyses: the collection's embedding map, the artist filter, verification against a
reference set chosen in the catalog, and classification with a classifier folder on the server."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def _paintings(tmp_path: Path, n: int, size: int = 96) -> list[Path]:
    from artlens.synth.hidden import builtin_pigments, make_hidden_scene

    out = []
    for seed in range(1, n + 1):
        path = tmp_path / f"painting{seed}.png"
        Image.fromarray(make_hidden_scene((size, size), kind="mixed", seed=seed, pigments=builtin_pigments())
                        .visible_rgb).save(path)
        out.append(path)
    return out


def _set_artist(catalog: Path, image_id: int, artist: str, source: str | None = None, title: str | None = None) -> None:
    """Link a catalogued image to an artwork, as ``artlens collect`` / ``paintings import`` do."""
    from artlens.catalog import Catalog

    with Catalog(catalog) as cat:
        row = cat.get_image(image_id)
        art = cat.add_artwork(title or f"work {image_id}", artist, source=source,
                              source_id=None if source is None else str(image_id))
        cat.add_image(row["path"], row["sha256"], row["modality"], artwork_id=art)


@pytest.mark.slow
def test_paintings_map_job(make_client, plate_tif, upload, wait_job, tmp_path):
    c = make_client(browser=True)
    ids = [upload(c, p, "rgb")["id"] for p in _paintings(tmp_path, 6)]
    plate = upload(c, plate_tif)["id"]
    catalog = tmp_path / "artlens.db"
    for k, i in enumerate(ids):
        _set_artist(catalog, i, "Ann Painter" if k < 3 else "Bo Brush", source="met" if k % 2 else "aic")
    r = c.post("/api/jobs", json={"kind": "paintings.map", "params": {}})
    assert r.status_code == 202, r.text
    job = wait_job(c, r.json()["id"], timeout=180)
    assert job["state"] == "done", job
    res = job["result"]
    assert res["method"] == "tsne" and res["embedder"]
    points = res["points"]
    assert sorted(p["image"] for p in points) == sorted(ids) and plate not in {p["image"] for p in points}
    xy = np.array([[p["x"], p["y"]] for p in points])
    assert np.isfinite(xy).all() and np.ptp(xy, axis=0).min() > 0  # a real spread, not a stub
    assert all(0 <= p["u"] <= 1 and 0 <= p["v"] <= 1 and "/" not in p["name"] for p in points)
    assert {p["artist"] for p in points} == {"Ann Painter", "Bo Brush"}
    assert c.get(f"/api/analyses/{job['analysis_id']}").json()["method"] == "paintings.map"
    page = c.get(f"/jobs/{job['id']}").text
    assert 'id="map"' in page and all(f'href="/images/{i}"' in page for i in ids)
    assert c.get(f"/jobs/{job['id']}/files/map.csv").text.startswith("image,name,x,y")
    # one artist: only their works (three: PCA below five points, and the result says so)
    job = wait_job(c, c.post("/api/jobs", json={"kind": "paintings.map",
                                                "params": {"artist": "Ann Painter"}}).json()["id"])
    assert job["state"] == "done", job
    assert sorted(p["image"] for p in job["result"]["points"]) == sorted(ids[:3])
    assert job["result"]["method"] == "pca" and job["result"]["requested_method"] == "tsne"
    job = wait_job(c, c.post("/api/jobs", json={"kind": "paintings.map", "params": {"source": "met"}}).json()["id"])
    assert sorted(p["image"] for p in job["result"]["points"]) == sorted(ids[1::2])


@pytest.mark.parametrize("params,needle", [
    ({"artist": "Nobody"}, "artist 'Nobody' holds 0 painting"),
    ({"method": "mds"}, "method must be one of"),
    ({"colour": "red"}, "unknown parameter"),
])
def test_paintings_map_bad_requests(make_client, tmp_path, upload, params, needle):
    c = make_client(workers=0)
    for p in _paintings(tmp_path, 2, size=32):
        upload(c, p, "rgb")
    r = c.post("/api/jobs", json={"kind": "paintings.map", "params": params})
    assert r.status_code == 422 and needle in r.json()["detail"], r.text
    if "colour" not in params:  # the form sends only its own fields
        page = c.post("/run/paintings.map", data={k: str(v) for k, v in params.items()})
        assert page.status_code == 422 and needle in html.unescape(page.text)
    assert c.get("/api/jobs").json()["jobs"] == []  # nothing was queued


def test_paintings_map_needs_two_paintings(make_client, plate_tif, upload):
    c = make_client(workers=0)
    upload(c, plate_tif)
    r = c.post("/api/jobs", json={"kind": "paintings.map", "params": {}})
    assert r.status_code == 422 and "the whole catalog holds 0 painting" in r.json()["detail"]
    r = c.post("/api/jobs", json={"kind": "paintings.map", "image": 1, "params": {}})
    assert r.status_code == 422 and "give no image" in r.json()["detail"]


def test_collection_filters_by_artist(make_client, upload, tmp_path):
    c = make_client(workers=0, browser=True)
    paths = _paintings(tmp_path, 4, size=32)
    a = upload(c, paths[0], "rgb", artist="Ann Painter", title="Harbour")
    b = upload(c, paths[1], "rgb", artist="  Bo   Brush ")
    plain = upload(c, paths[2], "rgb")
    assert a["artwork_id"] is not None and plain["artwork_id"] is None
    collected = upload(c, paths[3], "rgb")["id"]
    _set_artist(tmp_path / "artlens.db", collected, "Ann Painter", source="met")  # as `artlens collect` records it

    def shown(**query: str) -> set[int]:
        r = c.get("/", params=query)
        assert r.status_code == 200
        return {i for i in (a["id"], b["id"], plain["id"], collected) if f'href="/images/{i}"' in r.text}

    assert shown() == {a["id"], b["id"], plain["id"], collected}
    assert shown(artist="Ann Painter") == {a["id"], collected}
    assert shown(artist="Bo Brush") == {b["id"]}  # white space collapsed on upload
    assert shown(artist="Nobody") == set()
    assert shown(artist="Ann Painter", q="harbour") == {a["id"]}
    page = c.get("/").text
    assert 'id="artist-filter"' in page and '<option value="Ann Painter"' in page and '<option value="Bo Brush"' in page
    # uploading the same file again with another artist keeps the first record (no data is changed)
    again = upload(c, paths[0], "rgb", artist="Someone Else")
    assert again["id"] == a["id"] and again["artwork_id"] == a["artwork_id"]
    assert shown(artist="Someone Else") == set()
    r = c.post("/api/images", files={"file": (paths[2].name, paths[2].read_bytes())},
               data={"modality": "rgb", "artist": "x" * 201})
    assert r.status_code == 422 and "artist must be at most 200 characters" in r.json()["detail"]
    r = c.post("/upload", files={"file": (paths[2].name, paths[2].read_bytes())},
               data={"modality": "rgb", "title": "y" * 300})
    assert r.status_code == 422 and "title must be at most 200 characters" in r.text
    assert c.get(f"/api/images/{plain['id']}").json()["artwork_id"] is None


@pytest.mark.slow
def test_verify_against_a_reference_set(make_client, upload, wait_job, tmp_path):
    c = make_client(browser=True)
    paths = _paintings(tmp_path, 8, size=96)
    ids = [upload(c, p, "rgb", artist="Ann Painter" if k < 4 else "Bo Brush")["id"] for k, p in enumerate(paths)]
    q = ids[0]
    r = c.post("/api/jobs", json={"kind": "verify.reference", "image": q, "params": {"artist": "Ann Painter"}})
    assert r.status_code == 202, r.text
    job = wait_job(c, r.json()["id"], timeout=180)
    assert job["state"] == "done", job
    res = job["result"]
    assert res["image"] == q and res["reference"] == "Ann Painter" and res["references"] == 3
    lo, hi = res["interval"]
    assert 0 < lo <= res["likelihood_ratio"] <= hi and 0 < res["probability"] < 1
    assert res["probability"] == pytest.approx(res["likelihood_ratio"] / (1 + res["likelihood_ratio"]))
    closest = res["closest"]
    assert {x["image"] for x in closest} == set(ids[1:4])  # the references, never the questioned work itself
    assert [x["score"] for x in closest] == sorted((x["score"] for x in closest), reverse=True)
    assert "bank" in res["impostors"]
    analysis = c.get(f"/api/analyses/{job['analysis_id']}").json()
    assert analysis["method"] == "verify.attribution"
    assert analysis["summary"]["likelihood_ratio"] == pytest.approx(res["likelihood_ratio"])
    page = c.get(f"/jobs/{job['id']}").text
    assert 'id="likelihood-ratio"' in page and all(f'href="/images/{i}"' in page for i in ids[1:4])
    # Grad-CAM of the questioned work against its closest reference, as the CLI's --heatmap
    assert res["heatmaps_against"] == closest[0]["image"] and set(res["heatmaps"]) == {"a", "b"}
    for tag in ("a", "b"):
        png = Path(res["heatmaps"][tag])
        assert png.name == f"gradcam_{tag}.png" and f"/jobs/{job['id']}/files/{png.name}" in page
        got = c.get(f"/jobs/{job['id']}/files/{png.name}")
        assert got.status_code == 200 and got.content.startswith(b"\x89PNG")
        cam = np.load(png.with_suffix(".npy"))
        assert cam.ndim == 2 and np.isfinite(cam).all() and 0 <= cam.min() and cam.max() <= 1 and cam.max() > 0
    assert f"closest reference work #{closest[0]['image']}" in page
    assert {Path(f).name for f in analysis["files"]} >= {"gradcam_a.png", "gradcam_b.png"}
    # the same from a chosen list of images, with the other artist's works as the impostors
    job = wait_job(c, c.post("/api/jobs", json={"kind": "verify.reference", "image": ids[4], "params": {
        "references": ids[:4], "impostors": ids[4:] + [ids[0]]}}).json()["id"], timeout=180)  # ids[4], ids[0] dropped
    assert job["state"] == "done", job
    assert job["result"]["references"] == 4 and {x["image"] for x in job["result"]["closest"]} == set(ids[:4])
    assert job["result"]["impostor_set"]["kind"] == "images" and job["result"]["impostor_set"]["images"] == ids[5:]
    assert job["result"]["impostor_scores"]["n"] == 3  # calibrated on the 3 chosen works, not the bank
    # the impostors chosen from the catalog: the works of the other artists (Bo Brush's four)
    bank_n = res["impostor_scores"]["n"]
    job = wait_job(c, c.post("/api/jobs", json={"kind": "verify.reference", "image": q, "params": {
        "artist": "Ann Painter", "impostor_set": "other_artists"}}).json()["id"], timeout=180)
    assert job["state"] == "done", job
    res = job["result"]
    chosen = res["impostor_set"]
    assert chosen["kind"] == "other_artists" and chosen["images"] == ids[4:] and chosen["artists"] == ["Bo Brush"]
    assert chosen["used"] == 4 and res["impostor_scores"]["n"] == 4 != bank_n
    assert res["impostors"] == chosen["description"] == ("the catalogued works of artists other than Ann Painter: "
                                                         "4 works by 1 artist (Bo Brush)")
    analysis = c.get(f"/api/analyses/{job['analysis_id']}").json()
    assert analysis["parameters"]["impostor_set"] == {"kind": "other_artists", "artists": ["Bo Brush"],
                                                      "source": None}
    assert analysis["parameters"]["impostors"] == ids[4:] and analysis["summary"]["impostors"] == res["impostors"]
    page = html.unescape(c.get(f"/jobs/{job['id']}").text)
    assert "Impostors (other artists in the catalog): the catalogued works of artists other than Ann" in page
    assert all(f'<a href="/images/{i}">#{i}</a>' in page for i in ids[4:])


@pytest.mark.parametrize("params,needle", [
    ({}, "one of the two"),
    ({"artist": "Ann Painter", "references": [1, 2, 3]}, "one of the two"),
    ({"artist": "Ann Painter"}, "holds 2 image(s) besides the questioned one; it needs at least 3"),
    ({"references": [2, 3, 99]}, "there is no image 99"),
    ({"references": [1, 2, 3]}, "holds 2 image(s)"),
    ({"references": "2,3,4"}, "references must list image ids"),
    ({"references": [2, 3, 4], "impostors": [2, 1]}, "impostors: 0 image(s) outside the reference set"),
    ({"references": [2, 3, 4], "k": 0}, "k must lie between 1 and 20"),
])
def test_verify_against_a_reference_set_bad_requests(make_client, upload, tmp_path, params, needle):
    c = make_client(workers=0)
    for k, p in enumerate(_paintings(tmp_path, 4, size=32)):
        upload(c, p, "rgb", artist="Ann Painter" if k < 3 else None)
    r = c.post("/api/jobs", json={"kind": "verify.reference", "image": 1, "params": params})
    assert r.status_code == 422 and needle in r.json()["detail"], r.text
    if set(params) <= {"artist", "references"} and not isinstance(params.get("references"), str):
        form = {"image": "1", "artist": params.get("artist", ""),
                "references": [str(i) for i in params.get("references", [])]}
        page = c.post("/run/verify.reference", data=form)
        assert page.status_code == 422 and needle in html.unescape(page.text), page.text[-500:]
    assert c.get("/api/jobs").json()["jobs"] == []


def _impostor_catalog(c, upload, tmp_path: Path) -> list[int]:
    """Nine small paintings: 1-4 by Ann Painter (aic), 5-6 by Bo Brush (met), 7-9 unattributed (aic)."""
    ids = [upload(c, p, "rgb")["id"] for p in _paintings(tmp_path, 9, size=32)]
    for k, i in enumerate(ids):
        artist = "Ann Painter" if k < 4 else "Bo Brush" if k < 6 else None
        _set_artist(tmp_path / "artlens.db", i, artist, source="met" if 4 <= k < 6 else "aic")
    return ids


@pytest.mark.parametrize("params,needle", [
    ({"impostor_set": "everyone"}, "impostor_set must be one of bank, other_artists, filter, images, not 'everyone'"),
    ({"impostor_set": "other_artists"}, "the impostor set (the catalogued works of artists other than Ann Painter) "
                                        "holds 2 image(s) besides the questioned and reference works; it needs at "
                                        "least 3"),
    ({"impostor_set": "filter"}, "give impostor_artists (artist names) and / or impostor_source"),
    ({"impostor_set": "filter", "impostor_artists": ["Nobody Known"]}, "the catalog holds no painting by 'Nobody "
                                                                      "Known'"),
    ({"impostor_set": "filter", "impostor_artists": ["Ann Painter"]}, "'Ann Painter' is the reference set's artist"),
    ({"impostor_set": "filter", "impostor_artists": 5}, "impostor_artists must list artist names"),
    ({"impostor_set": "filter", "impostor_source": "louvre"}, "the catalog holds no painting from 'louvre'"),
    ({"impostor_set": "filter", "impostor_source": "met"},
     "(the catalogued works from met (less those of Ann Painter)) holds 2 image(s)"),
    ({"impostor_set": "filter", "impostor_artists": ["Bo Brush"], "impostor_source": "aic"},
     "(the catalogued works by Bo Brush from aic) holds 0 image(s)"),
    ({"impostor_set": "bank", "impostors": [5, 6, 7]}, "impostors (image ids) go with impostor_set images, not bank"),
    ({"impostor_set": "other_artists", "impostor_source": "met"}, "go with impostor_set filter, not other_artists"),
    ({"impostor_set": "images"}, "impostor_set images: list the impostors"),
    ({"impostor_set": "images", "impostors": [5, 6, 99]}, "impostors: there is no image 99"),
])
def test_verify_reference_impostor_set_bad_requests(make_client, upload, tmp_path, params, needle):
    c = make_client(workers=0)
    _impostor_catalog(c, upload, tmp_path)
    body = {"kind": "verify.reference", "image": 1, "params": {"artist": "Ann Painter", **params}}
    r = c.post("/api/jobs", json=body)
    assert r.status_code == 422 and needle in r.json()["detail"], r.text
    if not isinstance(params.get("impostor_artists", []), int):  # the form sends the same fields
        form = {"image": "1", "artist": "Ann Painter", **{k: [str(x) for x in v] if isinstance(v, list) else v
                                                        for k, v in params.items()}}
        page = c.post("/run/verify.reference", data=form)
        assert page.status_code == 422 and needle in html.unescape(page.text), page.text[-500:]
        assert 'name="impostor_set" value="other_artists"' in page.text  # the form is shown again, as sent
        if params["impostor_set"] != "everyone":
            assert f'name="impostor_set" value="{params["impostor_set"]}" checked' in page.text
        for name in set(params.get("impostor_artists", [])) & {"Ann Painter", "Bo Brush"}:  # the catalog's
            assert f'<option value="{name}" selected>' in page.text
    assert c.get("/api/jobs").json()["jobs"] == []


def test_verify_reference_impostor_sets_resolved_from_the_catalog(make_client, upload, tmp_path):
    """Each impostor set names the images it will calibrate on when the job is posted (no verifier run)."""
    c = make_client(workers=0)
    ids = _impostor_catalog(c, upload, tmp_path)

    def chosen(image: int, **params: object) -> dict:
        r = c.post("/api/jobs", json={"kind": "verify.reference", "image": image, "params": params})
        assert r.status_code == 202, r.text
        return c.get(f"/api/jobs/{r.json()['id']}").json()["params"]

    p = chosen(1, artist="Ann Painter")
    assert p["impostor_set"]["kind"] == "bank" and p["impostors"] is None
    p = chosen(1, artist="Ann Painter", impostor_set="filter", impostor_source="aic")
    assert p["references"] == ids[1:4] and p["impostors"] == ids[6:]  # Ann's own aic works are no impostors
    assert p["impostor_set"]["description"] == "the catalogued works from aic (less those of Ann Painter): 3 works"
    # reference images chosen one by one: their artworks' artists are the ones left out
    p = chosen(9, references=ids[4:6] + [ids[6]], impostor_set="other_artists")
    assert p["impostors"] == ids[:4] and p["impostor_set"]["artists"] == ["Ann Painter"]
    p = chosen(5, references=ids[6:9], impostor_set="filter", impostor_artists=["Ann Painter"])
    assert p["impostors"] == ids[:4] == p["impostor_set"]["images"]
    assert p["impostor_set"]["description"] == "the catalogued works by Ann Painter: 4 works by 1 artist (Ann Painter)"
    p = chosen(5, references=ids[6:9], impostors=ids[:4])  # a list alone still means impostor_set images
    assert p["impostor_set"]["kind"] == "images" and p["impostors"] == ids[:4]
    r = c.post("/api/jobs", json={"kind": "verify.reference", "image": 1, "params": {
        "references": ids[6:9], "impostor_set": "other_artists"}})
    assert r.status_code == 422 and "needs the reference set's artist" in r.json()["detail"]
    # the form offers every set, the catalog's artists and sources
    form = c.get("/run/verify.reference").text
    for value in ("bank", "other_artists", "filter", "images"):
        assert f'name="impostor_set" value="{value}"' in form
    artists = form.split('name="impostor_artists"', 1)[1].split("</select>", 1)[0]
    sources = form.split('name="impostor_source"', 1)[1].split("</select>", 1)[0]
    assert 'value="Ann Painter"' in artists and 'value="Bo Brush"' in artists
    assert 'value="met"' in sources and 'value="aic"' in sources


@pytest.mark.slow
def test_classify_job_with_a_classifier_folder(make_client, upload, wait_job, classifier_run, tmp_path):
    c = make_client()
    image = upload(c, _paintings(tmp_path, 1)[0], "rgb")["id"]
    for model in (classifier_run, classifier_run / "model", classifier_run / "model" / "config.json"):
        r = c.post("/api/jobs", json={"kind": "classify", "image": image, "params": {"model": str(model), "top_k": 3}})
        assert r.status_code == 202, r.text
    job = wait_job(c, r.json()["id"], timeout=180)
    assert job["state"] == "done", job
    preds = job["result"]["predictions"]
    assert sorted(p["label"] for p in preds) == ["baroque", "cubism", "ukiyo-e"]
    assert sum(p["probability"] for p in preds) == pytest.approx(1.0, abs=1e-4)
    assert [p["probability"] for p in preds] == sorted((p["probability"] for p in preds), reverse=True)
    assert job["result"]["label_column"] == "style" and job["result"]["model_checksum"]
    analysis = c.get(f"/api/analyses/{job['analysis_id']}").json()
    assert analysis["method"] == "paintings.classify" and analysis["summary"]["predictions"] == preds
    page = c.get(f"/jobs/{job['id']}").text
    assert 'id="predictions"' in page and "cubism" in page
    # Grad-CAM of the predicted class over the whole image and the tiles, as classify predict --heatmap
    res = job["result"]
    assert res["heatmap_label"] == preds[0]["label"] and set(res["heatmaps"]) == {"global", "tiles"}
    for tag in ("global", "tiles"):
        png = Path(res["heatmaps"][tag])
        assert png.parent.is_dir() and png.name == f"gradcam_{tag}.png"
        assert f"/jobs/{job['id']}/files/{png.name}" in page
        got = c.get(f"/jobs/{job['id']}/files/{png.name}")
        assert got.status_code == 200 and got.content.startswith(b"\x89PNG")
        cam = np.load(png.with_suffix(".npy"))
        assert cam.ndim == 2 and np.isfinite(cam).all() and 0 <= cam.min() and cam.max() <= 1
    assert np.load(Path(res["heatmaps"]["global"]).with_suffix(".npy")).max() > 0
    assert f"Grad-CAM of {preds[0]['label']}: whole image" in page
    assert {Path(f).name for f in analysis["files"]} >= {"gradcam_global.png", "gradcam_tiles.png"}


def test_classify_refuses_what_is_not_a_classifier_folder(make_client, upload, tmp_path):
    c = make_client(workers=0, browser=True)
    image = upload(c, _paintings(tmp_path, 1, size=32)[0], "rgb")["id"]
    (tmp_path / "empty").mkdir()
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text('{"model": "siamese_fabric"}')
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    cases = [("", "give the path of a classifier folder"),
             ("runs/style", "must be an absolute path"),
             (str(tmp_path / "missing"), "is not a folder on this server"),
             (str(tmp_path / "painting1.png"), "is not a folder on this server"),
             (str(tmp_path / "empty"), "is not a classifier folder"),
             (str(other), "is not a classifier folder"),
             (str(broken), "is not a classifier folder")]
    for model, needle in cases:
        r = c.post("/api/jobs", json={"kind": "classify", "image": image, "params": {"model": model}})
        assert r.status_code == 422 and needle in r.json()["detail"], (model, r.text)
        page = c.post("/run/classify", data={"image": str(image), "model": model})
        assert page.status_code == 422 and needle in html.unescape(page.text), model
    r = c.post("/api/jobs", json={"kind": "classify", "image": image, "params": {"model": str(other), "top_k": 0}})
    assert r.status_code == 422
    assert c.get("/api/jobs").json()["jobs"] == []
    assert (broken / "config.json").read_text() == "{not json"  # nothing was touched
