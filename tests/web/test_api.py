"""The JSON API with FastAPI's TestClient on a real catalog and real synthetic plates."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pytest
from PIL import Image

from artlens import __version__
from artlens.catalog import Catalog


def test_health_and_openapi(make_client):
    c = make_client(workers=0)
    assert c.get("/api/health").json() == {"status": "ok", "version": __version__}
    paths = c.get("/api/openapi.json").json()["paths"]
    for p in ("/api/health", "/api/images", "/api/images/{image_id}", "/api/jobs", "/api/jobs/{job_id}",
              "/api/jobs/{job_id}/cancel"):
        assert p in paths
    assert "POST /api/jobs" in c.get("/api").text.replace("</td><td><code>", " ")


def test_upload_is_stored_under_its_hash_and_catalogued(make_client, plate_tif, tmp_path):
    c = make_client(workers=0)
    before = plate_tif.read_bytes()
    r = c.post("/api/images", files={"file": ("../../escape.tif", before, "image/tiff")},
               data={"modality": "xray"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["sha256"] == hashlib.sha256(before).hexdigest()
    assert (body["width_px"], body["height_px"], body["px_per_cm"]) == (200, 200, 100.0)
    stored = tmp_path / "artlens-data" / "images" / f"{body['sha256']}.tif"
    assert stored.read_bytes() == before and plate_tif.read_bytes() == before
    assert not list(tmp_path.parent.rglob("escape.tif")) and not (tmp_path / "escape.tif").exists()
    assert c.get("/api/images").json()["images"][0]["id"] == body["id"]
    one = c.get(f"/api/images/{body['id']}").json()
    assert one["modality"] == "xray" and one["dzi"] == f"/tiles/{body['id']}.dzi"
    assert c.get("/api/images/999").status_code == 404
    # the same file again is the same image
    assert c.post("/api/images", files={"file": ("x.tif", before)}).json()["id"] == body["id"]


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("name,content,needle", [
    ("notes.png", b"this is not an image at all", "unsupported or unrecognised format"),
    ("empty.tif", b"", "empty"),
    ("cut.png", _png(np.zeros((64, 64), np.uint8))[:60], "corrupt or truncated"),
    ("fake.tif", b"II*\x00" + b"\x00" * 40, "TIFF"),
])
def test_bad_uploads_get_a_clear_4xx(make_client, name, content, needle, tmp_path):
    c = make_client(workers=0)
    r = c.post("/api/images", files={"file": (name, content)}, data={"modality": "xray"})
    assert 400 <= r.status_code < 500, r.text
    assert needle in r.json()["detail"]
    assert "upload-" not in r.json()["detail"]  # the temporary file's name is not the user's business
    assert not list((tmp_path / "artlens-data" / "images").glob("*"))
    assert not list((tmp_path / "artlens-data" / "tmp").glob("*"))


def test_bad_parameters_and_missing_file(make_client, plate_tif):
    c = make_client(workers=0)
    r = c.post("/api/images", files={"file": ("p.tif", plate_tif.read_bytes())}, data={"px_per_cm": "-3"})
    assert r.status_code == 422 and "px_per_cm" in r.json()["detail"]
    r = c.post("/api/images", files={"file": ("p.tif", plate_tif.read_bytes())}, data={"modality": "<script>"})
    assert r.status_code == 422 and "modality" in r.json()["detail"]
    assert c.post("/api/images", data={"modality": "xray"}).status_code == 422


def test_upload_over_the_cap_is_413(make_client):
    c = make_client(workers=0, max_upload_mb=0.05)
    big = _png(np.random.default_rng(0).integers(0, 255, (400, 400), dtype=np.uint8))
    assert len(big) > 0.05 * 2**20
    r = c.post("/api/images", files={"file": ("big.png", big)})
    assert r.status_code == 413 and "0.05 MB" in r.json()["detail"]
    page = c.post("/upload", files={"file": ("big.png", big)}, headers={"Accept": "text/html"})
    assert page.status_code == 413 and "larger than the limit" in page.text


def test_upload_page_shows_errors_in_the_page(make_client):
    c = make_client(workers=0)
    r = c.post("/upload", files={"file": ("a.jpg", b"GIF89a not really")}, data={"modality": "rgb"})
    assert r.status_code == 415 and 'id="error"' in r.text and "unsupported" in r.text


def test_security_headers_and_host_check(make_client, page_token):
    c = make_client(workers=0)
    for url in ("/", "/api/health", "/static/app.js"):
        csp = c.get(url).headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "http" not in csp
    assert c.get("/", headers={"Host": "evil.example:8000"}).status_code == 400
    r = c.post("/api/jobs", json={"kind": "threads.count", "image": 1}, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and "cross-site" in r.json()["detail"]
    r = c.post("/api/jobs", json={"kind": "threads.count", "image": 1}, headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    # same origin passes the check (and, with the page's form token, fails later, on the missing image)
    token = page_token(c)
    r = c.post("/api/jobs", json={"kind": "threads.count", "image": 1},
               headers={"Origin": "http://127.0.0.1:8000", "X-CSRF-Token": token})
    assert r.status_code == 422


def test_form_posts_need_the_page_token(make_client, plate_tif, page_token):
    c = make_client(workers=0)
    token = page_token(c)
    set_cookie = c.get("/").headers.get("set-cookie")  # the session is kept, not renewed
    assert set_cookie is None
    assert "set-cookie" not in c.get("/api/health").headers  # API answers make no session
    files = {"file": ("p.tif", plate_tif.read_bytes())}
    # the browser's form (its session cookie with it) but no token / a wrong one: 403 and a page that says why
    for data in ({"modality": "xray"}, {"csrf_token": "0" * 64, "modality": "xray"}):
        r = c.post("/upload", files=files, data=data, headers={"Accept": "text/html"})
        assert r.status_code == 403 and "reload the page" in r.text and "text/html" in r.headers["content-type"]
    r = c.post("/run/threads.count", data={"csrf_token": token[:-1] + "x", "image": "1"})
    assert r.status_code == 403
    with open_session(c) as other:  # another browser's token is wrong for this one
        assert page_token(other) != token
        r = other.post("/run/threads.count", data={"csrf_token": token, "image": "1"})
        assert r.status_code == 403
    # the token after a file part does not count: it must come first
    r = c.post("/upload", files={"file": ("p.tif", plate_tif.read_bytes()), "csrf_token": (None, token)})
    assert r.status_code == 403
    assert c.get("/api/images").json()["total"] == 0
    # with the token: the upload form and the run form work (the body reaches the route whole)
    r = c.post("/upload", files=files, data={"csrf_token": token, "modality": "xray", "px_per_cm": "100"},
               follow_redirects=False)
    assert r.status_code == 303, r.text
    image_id = int(r.headers["location"].rsplit("/", 1)[1])
    r = c.post("/run/threads.count", data={"csrf_token": token, "image": str(image_id), "window_cm": "1.0"},
               follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/jobs/"), r.text
    job = r.headers["location"]
    assert c.post(job + "/cancel", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    assert c.get("/api" + job).json()["state"] == "cancelled"
    # the app's scripts send it as a header; a browser's JSON call without it gets 403 JSON
    r = c.post("/api/jobs", json={"kind": "threads.count", "image": image_id}, headers={"X-CSRF-Token": token})
    assert r.status_code == 202
    r = c.post("/api/jobs", json={"kind": "threads.count", "image": image_id})
    assert r.status_code == 403 and "token" in r.json()["detail"]
    # an API client without cookies (a script, curl) is not asked for it; a browser's fetch metadata is
    c.cookies.clear()
    assert c.post("/api/jobs", json={"kind": "threads.count", "image": image_id}).status_code == 202
    r = c.post("/api/jobs", json={"kind": "threads.count", "image": image_id},
               headers={"Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 403


def open_session(c):
    """A second browser on the same app (its own cookie jar)."""
    from fastapi.testclient import TestClient

    return TestClient(c.app, base_url=str(c.base_url))


def test_token_server_forms_and_bearer_clients(make_client, page_token):
    c = make_client(workers=0, token="lab-secret-1", allowed_hosts={"10.0.0.5"})
    token = page_token(c, "/login")
    assert c.post("/login", data={"token": "lab-secret-1", "next": "/"}).status_code == 403  # no form token
    r = c.post("/login", data={"csrf_token": token, "token": "lab-secret-1", "next": "/"}, follow_redirects=False)
    assert r.status_code == 303
    assert c.post("/api/jobs", json={"kind": "threads.count", "image": 1}).status_code == 403  # cookie, no token
    # a script with the bearer token is never asked for the form token, cookies or not
    r = c.post("/api/jobs", json={"kind": "threads.count", "image": 1},
               headers={"Authorization": "Bearer lab-secret-1"})
    assert r.status_code == 422


def test_token_is_required_when_set(make_client):
    c = make_client(workers=0, token="lab-secret-1", allowed_hosts={"10.0.0.5"})
    assert c.get("/api/health").status_code == 200  # liveness stays open
    assert c.get("/api/images").status_code == 401
    r = c.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert c.get("/api/images", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert c.get("/api/images", headers={"Authorization": "Bearer lab-secret-1"}).status_code == 200
    wrong = c.post("/login", data={"token": "nope", "next": "/"})
    assert wrong.status_code == 401  # the page again, with a session and its form token
    form_token = wrong.text.split('name="csrf_token" value="', 1)[1][:64]
    r = c.post("/login", data={"csrf_token": form_token, "token": "lab-secret-1", "next": "//evil.example/"},
               follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert "samesite=strict" in r.headers["set-cookie"].lower() and "httponly" in r.headers["set-cookie"].lower()
    assert c.get("/api/images").status_code == 200  # the cookie now


def test_serve_refuses_a_network_host_without_token(cli):
    code, _, err = cli("serve", "--host", "0.0.0.0", "--port", "8123")
    assert code == 7 and "--token" in err and "Traceback" not in err
    code, _, err = cli("serve", "--host", "0.0.0.0", "--token", "short")
    assert code == 7 and "8 characters" in err


def test_threads_count_job_matches_the_cli(make_client, plate_tif, upload, wait_job, cli, tmp_path):
    c = make_client()
    image = upload(c, plate_tif)
    r = c.post("/api/jobs", json={"kind": "threads.count", "image": image["id"], "params": {"window_cm": 1.0}})
    assert r.status_code == 202
    job = wait_job(c, r.json()["id"])
    assert job["state"] == "done" and job["progress"] == 1.0, job
    code, out, _ = cli("threads", "count", plate_tif, "--out", tmp_path / "cli", "--no-catalog", "--json")
    assert code == 0
    expected = json.loads(out)
    result = job["result"]
    for key in ("method", "artlens_version", "px_per_cm", "window_cm", "step_cm", "windows", "plate_cm"):
        assert result[key] == expected[key], key
    for d in ("horizontal", "vertical"):
        assert result[d]["threads_per_cm"] == expected[d]["threads_per_cm"]
    assert abs(result["horizontal"]["threads_per_cm"]["mean"] - 12.0) < 0.3
    # recorded in the catalog, with its report and overlays
    a = c.get(f"/api/analyses/{job['analysis_id']}").json()
    assert a["image"] == image["id"] and a["method"] == "threads.spectral"
    assert f"/analyses/{a['id']}/files/report.html" in a["files"]
    report = c.get(f"/analyses/{a['id']}/files/report.html")
    assert report.status_code == 200 and "script-src" not in report.headers["content-security-policy"]
    names = {o["name"]: o for o in a["overlays"]}
    dens = names["density_horizontal"]
    assert dens["units"] == "threads/cm" and 11 < dens["vmin"] <= dens["vmax"] < 13
    png = Image.open(io.BytesIO(c.get(dens["url"]).content))
    assert png.mode == "RGBA"
    assert c.get(f"/images/{image['id']}").status_code == 200
    assert "density_horizontal" in c.get(f"/images/{image['id']}").text
    page = c.get(f"/jobs/{job['id']}")
    assert page.status_code == 200
    # the CLI's second opinion, the same in the job (agreeing here: said quietly, no "check here")
    assert result["second_opinion"]["plate_flagged"] is False
    assert result["second_opinion"]["horizontal"] == expected["second_opinion"]["horizontal"]
    assert 'id="second-opinion"' in page.text and 'id="check-here"' not in page.text
    assert 'id="check-1"' not in page.text  # nor an octave doubt or few agreeing windows on a clean plate


def test_job_requests_are_checked(make_client, plate_tif, upload):
    c = make_client(workers=0)
    image = upload(c, plate_tif)
    cases = [
        ({"kind": "nope", "image": image["id"]}, "unknown job kind"),
        ({"kind": "threads.count", "image": 999}, "no image 999"),
        ({"kind": "threads.count", "image": image["id"], "params": {"window_cm": "big"}}, "window_cm"),
        ({"kind": "threads.count", "image": image["id"], "params": {"step_cm": 0}}, "step_cm"),
        ({"kind": "threads.count", "image": image["id"], "params": {"colour": 1}}, "unknown parameter"),
        ({"kind": "verify", "image": image["id"], "params": {"other": image["id"]}}, "two different"),
        ({"kind": "canvas.match", "params": {"images": [image["id"]]}}, "at least two"),
        ({"kind": "canvas.match", "params": {"images": [image["id"]], "threshold": 1}}, "strictly between 0 and 1"),
    ]
    for body, needle in cases:
        r = c.post("/api/jobs", json=body)
        assert r.status_code == 422 and needle in r.json()["detail"], (body, r.text)
    assert c.get("/api/jobs/12345").status_code == 404
    assert c.post("/api/jobs/12345/cancel").status_code == 404


def test_cancel_a_queued_job(make_client, plate_tif, upload):
    c = make_client(workers=0)
    image = upload(c, plate_tif)
    job_id = c.post("/api/jobs", json={"kind": "threads.count", "image": image["id"]}).json()["id"]
    assert c.get(f"/api/jobs/{job_id}").json()["state"] == "queued"
    assert c.post(f"/api/jobs/{job_id}/cancel").json() == {"id": job_id, "state": "cancelled"}
    assert c.get(f"/api/jobs/{job_id}").json()["state"] == "cancelled"


def test_cancel_a_running_job_stops_it_at_its_next_progress_report(make_client, plate_tif, upload, tmp_path):
    c = make_client(workers=0)
    image = upload(c, plate_tif)
    job_id = c.post("/api/jobs", json={"kind": "threads.count", "image": image["id"]}).json()["id"]
    runner = c.app.state.runner
    with Catalog(tmp_path / "artlens.db") as cat:
        job = cat.claim_job("test-worker")
        assert job["id"] == job_id and job["state"] == "running"
        assert c.post(f"/api/jobs/{job_id}/cancel").json()["state"] == "running"  # asked, not yet stopped
        runner.run_one(cat, job)
    final = c.get(f"/api/jobs/{job_id}").json()
    assert final["state"] == "cancelled" and final["result"] is None
    with Catalog(tmp_path / "artlens.db") as cat:
        assert cat.analyses() == []


def test_restart_recovers_running_jobs_and_keeps_results(make_client, plate_tif, upload, wait_job, tmp_path):
    c = make_client()
    image = upload(c, plate_tif)
    done = wait_job(c, c.post("/api/jobs", json={"kind": "threads.count", "image": image["id"]}).json()["id"])
    assert done["state"] == "done"
    c.__exit__(None, None, None)  # the server stops
    with Catalog(tmp_path / "artlens.db") as cat:  # a job was running when the server was killed
        left = cat.add_job("threads.count", {"px_per_cm": 100.0, "window_cm": 1.0, "step_cm": 0.5,
                                             "method": "spectral"}, image_id=image["id"])
        assert cat.claim_job("dead-server")["id"] == left
    c2 = make_client(workers=0)  # restart: recover_jobs() runs at start-up
    assert c2.get(f"/api/jobs/{left}").json()["state"] == "queued"
    again = c2.get(f"/api/jobs/{done['id']}").json()
    assert again["state"] == "done" and again["result"] == done["result"]
    c2.__exit__(None, None, None)
    with Catalog(tmp_path / "artlens.db") as cat:  # killed once more while running: failed, not retried forever
        assert cat.claim_job("dead-server")["id"] == left
    c3 = make_client(workers=0)
    failed = c3.get(f"/api/jobs/{left}").json()
    assert failed["state"] == "failed" and "server stopped" in failed["error"]


def test_tiles_on_demand(make_client, tmp_path):
    rng = np.random.default_rng(1)
    arr = (rng.random((1300, 3000)) * 65535).astype(np.uint16)  # wider than the overview limit: both paths
    import tifffile

    path = tmp_path / "wide.tif"
    tifffile.imwrite(path, arr)
    c = make_client(workers=0)
    r = c.post("/api/images", files={"file": ("wide.tif", path.read_bytes())})
    image_id = r.json()["id"]
    info = c.get(f"/api/images/{image_id}/tiles").json()
    assert info["max_level"] == 12 and info["tile_size"] == 256
    assert 'Width="3000" Height="1300"' in c.get(f"/tiles/{image_id}.dzi").text

    def tile(level: int, col: int, row: int) -> Image.Image:
        resp = c.get(f"/tiles/{image_id}_files/{level}/{col}_{row}.jpg")
        assert resp.status_code == 200 and resp.headers["content-type"] == "image/jpeg"
        return Image.open(io.BytesIO(resp.content))

    assert tile(12, 0, 0).size == (256, 256)
    assert tile(12, 11, 5).size == (3000 - 11 * 256, 1300 - 5 * 256)  # the last column and row are smaller
    assert tile(11, 5, 2).size == (1500 - 5 * 256, 650 - 2 * 256)
    assert tile(8, 0, 0).size == (188, 82)  # cut from the overview
    assert tile(0, 0, 0).size == (1, 1)
    cached = tmp_path / "artlens-data" / "tiles" / r.json()["sha256"] / "12" / "0_0.jpg"
    assert cached.is_file()
    assert c.get(f"/tiles/{image_id}_files/12/12_0.jpg").status_code == 404
    assert c.get(f"/tiles/{image_id}_files/13/0_0.jpg").status_code == 404
    assert c.get(f"/images/{image_id}/thumb.jpg").status_code == 200
    # the full-resolution tile shows the pixels (8-bit display between the 0.5th and 99.5th percentiles)
    px = np.asarray(tile(12, 0, 0), dtype=float)
    expect = np.clip((arr[:256, :256] / 65535 - 0.005) / 0.99 * 255, 0, 255)
    assert np.corrcoef(px.ravel(), expect.ravel())[0, 1] > 0.95


def test_cached_tiles_from_memory_with_etag(make_client, plate_tif, tmp_path):
    c = make_client(workers=0)
    body = c.post("/api/images", files={"file": ("p.tif", plate_tif.read_bytes())}).json()
    url = f"/tiles/{body['id']}_files/8/0_0.jpg"
    made = c.get(url)  # made now, by the app's route
    assert made.status_code == 200 and made.headers["etag"] and "max-age" in made.headers["cache-control"]
    again = c.get(url)  # from the tile file, then kept in memory
    assert again.content == made.content and again.headers["etag"] == made.headers["etag"]
    assert "content-security-policy" in again.headers  # the security middleware still wraps it
    r = c.get(url, headers={"If-None-Match": made.headers["etag"]})
    assert r.status_code == 304 and r.content == b""
    assert c.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    (tmp_path / "artlens-data" / "tiles" / body["sha256"] / "8" / "0_0.jpg").unlink()
    assert c.get(url).content == made.content  # answered from memory
    assert c.get(f"/tiles/{body['id']}_files/8/5_5.jpg").status_code == 404  # outside: the app says so
    assert c.get("/tiles/999_files/8/0_0.jpg").status_code == 404


def test_cached_tiles_need_the_token(make_client, plate_tif):
    c = make_client(workers=0, token="lab-secret-1", allowed_hosts={"10.0.0.5"})
    auth = {"Authorization": "Bearer lab-secret-1"}
    body = c.post("/api/images", files={"file": ("p.tif", plate_tif.read_bytes())}, headers=auth).json()
    url = f"/tiles/{body['id']}_files/8/0_0.jpg"
    assert c.get(url, headers=auth).status_code == 200
    assert c.get(url, headers=auth).status_code == 200  # cached now
    assert c.get(url, follow_redirects=False).status_code == 303  # to /login, not the tile


def test_tile_bytes_lru_is_bounded():
    from artlens.web.tilecache import TileBytes

    lru = TileBytes(max_bytes=100)
    for k in range(5):
        lru.put(("s", 0, k, 0), bytes(30))
    assert len(lru) == 3 and lru.size == 90 and lru.get(("s", 0, 0, 0)) is None
    assert lru.get(("s", 0, 2, 0)) is not None  # used: kept when the next one comes
    lru.put(("s", 0, 9, 0), bytes(30))
    assert lru.get(("s", 0, 2, 0)) is not None and lru.get(("s", 0, 3, 0)) is None


def test_search_by_example_and_canvas_compare(make_client, plate_tif, upload, wait_job, tmp_path):
    from artlens.synth.hidden import builtin_pigments, make_hidden_scene

    c = make_client()
    ids = []
    for seed in (1, 2, 3):
        path = tmp_path / f"painting{seed}.png"
        Image.fromarray(make_hidden_scene((96, 96), kind="mixed", seed=seed, pigments=builtin_pigments()).visible_rgb
                        ).save(path)
        ids.append(upload(c, path, "rgb")["id"])
    plate = upload(c, plate_tif)["id"]
    job = wait_job(c, c.post("/api/jobs", json={"kind": "search", "image": ids[1], "params": {"k": 3}}).json()["id"])
    assert job["state"] == "done", job
    results = job["result"]["results"]
    assert [r["image"] for r in results][0] == ids[1]  # the query itself is the closest
    assert {r["image"] for r in results} == set(ids) and plate not in {r["image"] for r in results}
    assert all("/" not in r["name"] for r in results)
    assert "search-results" in c.get(f"/jobs/{job['id']}").text
    c.cookies.clear()  # the page gave this client a browser session; the API calls below are a script's
    # canvas compare: two plates cut from one roll
    from artlens.synth import Roll, write_plate_tiff

    roll = Roll(length_cm=20, width_cm=8, horizontal_density=13.4, vertical_density=16.2, seed=11)
    a, b = (upload(c, write_plate_tiff(tmp_path / f"cut{k}.tif", roll.cut(1 + 2 * k, 2 + 6 * k, 2.5, 2.5, seed=k,
                                                                           px_per_cm=100.0)))["id"] for k in (0, 1))
    r = c.post("/api/jobs", json={"kind": "canvas.compare", "image": a, "params": {"other": b}})
    job = wait_job(c, r.json()["id"])
    assert job["state"] == "done", job
    assert 0.5 < job["result"]["same_roll_probability"] <= 1
    assert c.get(f"/api/analyses/{job['analysis_id']}").json()["method"] == "canvas.compare"


def test_streamed_upload_without_length_is_cut_at_the_cap(make_client):
    c = make_client(workers=0, max_upload_mb=0.05)

    def body():
        for _ in range(20):
            yield b"x" * 8192

    r = c.post("/api/images", content=body(), headers={"Content-Type": "multipart/form-data; boundary=zz"})
    assert r.status_code == 413 and "limit" in r.json()["detail"]


def test_on_a_postgresql_catalog_shared_with_the_cli(make_client, postgres_url, plate_tif, upload, wait_job, cli,
                                                     tmp_path):
    c = make_client(catalog=postgres_url, data_dir=tmp_path / "data")
    image = upload(c, plate_tif)
    job = wait_job(c, c.post("/api/jobs", json={"kind": "threads.count", "image": image["id"]}).json()["id"])
    assert job["state"] == "done", job
    code, out, err = cli("catalog", "list", "--catalog", postgres_url, "--json")
    assert code == 0, err
    assert [a["id"] for a in json.loads(out)] == [job["analysis_id"]]
    assert (tmp_path / "data" / "images" / f"{image['sha256']}.tif").is_file()


def test_thread_count_checks_on_the_job_page():
    """The job page lists the report's octave doubts and few-agreeing-windows notes (the second opinion has its
    own line), for one method and for both."""
    from artlens.web.pages import thread_checks

    def direction(valid: int, outliers: int, alt: dict | None = None) -> dict:
        return {"threads_per_cm": {"mean": 6.6, "std": 0.4, "median": 6.6}, "valid_windows": valid,
                "outlier_windows": outliers, "harmonic_alternative": alt}

    alt = {"threads_per_cm": 13.2, "windows": 9, "relation": "double"}
    one = {"method": "spectral", "horizontal": direction(6, 36), "vertical": direction(40, 2, alt)}
    notes = thread_checks(one)
    assert len(notes) == 2 and "only 6 of 42 windows" in notes[0] and "13.20 threads/cm, the double" in notes[1]
    assert thread_checks({"method": "both", "spectral": one, "cnn": {"horizontal": direction(40, 0)}}) == notes
    assert thread_checks({"method": "spectral", "horizontal": direction(40, 2), "vertical": direction(40, 2)}) == []
