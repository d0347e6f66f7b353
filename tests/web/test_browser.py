"""End-to-end in a real browser: Playwright driving Debian's chromium against the real server (uvicorn on
a free loopback port). Screenshots go to $ARTLENS_TEST_ARTIFACTS or pytest's tmp folder, never the repo.

Skipped when chromium or Playwright is absent, unless ARTLENS_REQUIRE_SERVICES=1 (CI), when that fails.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

pytestmark = pytest.mark.slow
JOB_TIMEOUT_MS = 120_000


def _chromium() -> str:
    path = os.environ.get("ARTLENS_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    problem = None
    if path is None:
        problem = "chromium not found (install Debian's chromium package or set ARTLENS_CHROMIUM)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "the playwright Python package is not installed (pip install -e '.[dev]')"
    if problem is not None:
        if os.environ.get("ARTLENS_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{problem}; ARTLENS_REQUIRE_SERVICES=1 requires the browser tests to run")
        pytest.skip(problem)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real app served by uvicorn in a thread; yields its base URL."""
    import uvicorn

    from artlens.web import create_app

    root = tmp_path_factory.mktemp("web-e2e")
    app = create_app(root / "artlens.db", workers=1)
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(15)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    path = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        args = ["--no-sandbox"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
        b = pw.chromium.launch(executable_path=path, args=args)
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("ARTLENS_TEST_ARTIFACTS")
    out = Path(folder) / "web-screenshots" if folder else tmp_path_factory.mktemp("web-screenshots")
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture
def page(browser, server):
    context = browser.new_context(base_url=server, viewport={"width": 1400, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    context.close()
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small synthetic inputs: three plates (two from one roll), a visible image and its IR view."""
    from artlens.synth import Roll, write_plate_tiff
    from artlens.synth.hidden import builtin_pigments, make_hidden_scene

    d = tmp_path_factory.mktemp("e2e-inputs")
    out = {}
    roll_a = Roll(length_cm=30, width_cm=10, horizontal_density=13.4, vertical_density=16.2, seed=11)
    roll_b = Roll(length_cm=30, width_cm=10, horizontal_density=14.6, vertical_density=15.0, seed=12)
    for k, (roll, x, y) in enumerate([(roll_a, 1, 2), (roll_a, 3, 12), (roll_b, 2, 4)]):
        out[f"plate{k}"] = write_plate_tiff(d / f"plate{k}.tif", roll.cut(x, y, 2.5, 2.5, seed=k, px_per_cm=100.0))
    scene = make_hidden_scene((128, 128), kind="mixed", seed=5, pigments=builtin_pigments())
    Image.fromarray(scene.visible_rgb).save(d / "visible.png")
    Image.fromarray(scene.ir).save(d / "infrared.png")
    out["visible"], out["ir"] = d / "visible.png", d / "infrared.png"
    return out


def _upload(page, path: Path, modality: str) -> int:
    page.goto("/upload")
    page.set_input_files("input[name=file]", str(path))
    page.select_option("select[name=modality]", modality)
    page.click("button[type=submit]")
    page.wait_for_url("**/images/*")
    return int(page.url.rstrip("/").split("/")[-1].split("?")[0])


def _wait_done(page) -> None:
    page.wait_for_selector("#job[data-state=done], #job[data-state=failed]", timeout=JOB_TIMEOUT_MS)
    assert page.get_attribute("#job", "data-state") == "done", page.text_content("#job")


def test_count_threads_then_see_the_density_map_and_the_report(page, files, shots):
    image = _upload(page, files["plate0"], "xray")
    page.wait_for_selector("#viewer[data-ready='1']")
    page.wait_for_selector(".leaflet-tile-loaded")
    page.click("#run-threads")
    page.click("#run")
    page.wait_for_url("**/jobs/*")
    _wait_done(page)
    page.click("#view-map")
    page.wait_for_url(f"**/images/{image}?analysis=*")
    page.wait_for_selector("#viewer[data-overlay]")  # the density map's image overlay loaded
    overlay = page.locator("img.map-overlay")
    assert overlay.count() == 1 and overlay.is_visible()
    assert "threads/cm" in page.text_content("#legend")
    page.locator("#opacity").evaluate("el => { el.value = '0.9'; el.dispatchEvent(new Event('input')); }")
    assert float(overlay.evaluate("el => getComputedStyle(el).opacity")) == pytest.approx(0.9)
    page.screenshot(path=str(shots / "threads-density-overlay.png"))
    page.locator("#viewer").evaluate("el => el.artlens.map.setZoom(el.artlens.map.getMaxZoom() - 2)")
    page.wait_for_selector(".leaflet-tile-loaded")
    page.screenshot(path=str(shots / "threads-density-overlay-zoomed.png"))
    page.click("a.report")
    assert "Thread count" in page.title() or "Thread count" in page.content()
    page.screenshot(path=str(shots / "threads-report.png"), full_page=False)


def test_verify_two_images(page, files, shots):
    a = _upload(page, files["visible"], "rgb")
    b = _upload(page, files["plate1"], "xray")
    page.goto(f"/run/verify?image={a}&other={b}")
    page.click("#run")
    _wait_done(page)
    text = page.text_content("#probability")
    assert "Same-artist probability" in text and 0 <= float(text.split(":")[1]) <= 1
    assert page.locator(".pair img").count() == 2
    page.screenshot(path=str(shots / "verify.png"), full_page=True)


def test_beneath_compare_heatmap_and_swipe(page, files, shots):
    visible = _upload(page, files["visible"], "rgb")
    ir = _upload(page, files["ir"], "ir")
    page.goto(f"/run/beneath.compare?image={visible}&other={ir}")
    page.select_option("select[name=method]", "residual")
    page.click("#run")
    _wait_done(page)
    page.click("#view-map")
    page.wait_for_selector("#viewer[data-overlay]")
    assert "heatmap" in page.text_content("#legend")
    page.select_option("#swipe", str(ir))
    page.wait_for_selector(".leaflet-swipe-pane .leaflet-tile-loaded")
    page.locator("#swipe-pos").evaluate("el => { el.value = '0.3'; el.dispatchEvent(new Event('input')); }")
    clip = page.locator(".leaflet-swipe-pane").evaluate("el => el.style.clip")
    assert clip.startswith("rect(")
    page.screenshot(path=str(shots / "beneath-heatmap-swipe.png"))


def test_canvas_match_matrix(page, files, shots):
    for k in range(3):
        _upload(page, files[f"plate{k}"], "xray")
    page.goto("/run/canvas.match")
    page.click("#run")
    _wait_done(page)
    cells = page.locator("#matrix td.cell a")
    assert cells.count() >= 6  # every off-diagonal cell of three or more plates
    assert page.locator("#clusters li").count() >= 1
    page.screenshot(path=str(shots / "canvas-match-matrix.png"), full_page=True)
    cells.first.click()
    page.wait_for_url("**/pair/*/*")
    p = float(page.text_content("#probability").split(":")[1].split("(")[0])
    assert 0 <= p <= 1 and page.locator(".pair img").count() == 2
    page.screenshot(path=str(shots / "canvas-match-pair.png"), full_page=True)


def test_embedding_map_points_open_their_images(page, files, shots, tmp_path):
    from artlens.synth.hidden import builtin_pigments, make_hidden_scene

    ids = []
    for seed in (21, 22, 23):
        path = tmp_path / f"map{seed}.png"
        Image.fromarray(make_hidden_scene((96, 96), kind="mixed", seed=seed, pigments=builtin_pigments()).visible_rgb
                        ).save(path)
        ids.append(_upload(page, path, "rgb"))
    page.goto("/run/paintings.map")
    page.click("#run")
    _wait_done(page)
    points = page.locator("#map a")
    assert points.count() >= 3  # these three and any painting the other tests uploaded
    for i in ids:
        assert page.locator(f"#map a[href='/images/{i}']").count() == 1
    page.screenshot(path=str(shots / "paintings-map.png"), full_page=True)
    # click the first of them that no other thumbnail covers (points of near-identical paintings may overlap)
    uncovered = [i for i in ids if page.locator(f"#map a[href='/images/{i}']").evaluate(
        "a => { a.scrollIntoView({block: 'center'}); const r = a.getBoundingClientRect(); "
        "const hit = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2); "
        "return !!hit && a.contains(hit); }")]
    assert uncovered, "every point is covered by another"
    page.locator(f"#map a[href='/images/{uncovered[0]}']").click()
    page.wait_for_url(f"**/images/{uncovered[0]}")
    page.wait_for_selector("#viewer[data-ready='1']")


def _painting(folder: Path, seed: int) -> Path:
    from artlens.synth.hidden import builtin_pigments, make_hidden_scene

    path = folder / f"painting{seed}.png"
    Image.fromarray(make_hidden_scene((96, 96), kind="mixed", seed=seed, pigments=builtin_pigments()).visible_rgb
                    ).save(path)
    return path


def _images_loaded(page, selector: str) -> list[int]:
    """The natural widths of the images ``selector`` finds, once each has loaded (0: it failed)."""
    page.wait_for_function(f"[...document.querySelectorAll({selector!r})].every(i => i.complete)")
    return page.locator(selector).evaluate_all("els => els.map(i => i.naturalWidth)")


def test_classify_shows_the_prediction_and_its_heatmap(page, classifier_run, shots, tmp_path):
    image = _upload(page, _painting(tmp_path, 31), "rgb")
    page.goto(f"/run/classify?image={image}")
    page.fill("#model", str(classifier_run))
    page.click("#run")
    page.wait_for_url("**/jobs/*")
    _wait_done(page)
    rows = page.locator("#predictions tr td:first-child").all_text_contents()
    assert sorted(rows) == ["baroque", "cubism", "ukiyo-e"]
    best = rows[0]
    captions = page.locator(".gradcam figcaption").all_text_contents()
    assert captions == [f"Grad-CAM of {best}: whole image", f"Grad-CAM of {best}: full-resolution tiles"]
    widths = _images_loaded(page, ".gradcam img")
    assert len(widths) == 2 and min(widths) > 0
    page.screenshot(path=str(shots / "classify-gradcam.png"), full_page=True)


def test_verify_against_a_reference_set_shows_the_likelihood_ratio(page, shots, tmp_path):
    artist = "Reference Painter"
    ids = []
    for seed in (41, 42, 43, 44, 45, 46, 47):
        page.goto("/upload")
        page.set_input_files("input[name=file]", str(_painting(tmp_path, seed)))
        page.select_option("select[name=modality]", "rgb")
        page.fill("input[name=artist]", artist if seed < 45 else "Other Hand")
        page.click("button[type=submit]")
        page.wait_for_url("**/images/*")
        ids.append(int(page.url.rstrip("/").split("/")[-1].split("?")[0]))
    ids, others = ids[:4], ids[4:]
    page.goto(f"/run/verify.reference?image={ids[0]}")
    page.select_option("select[name=artist]", artist)
    assert page.is_checked("#impostors input[value=bank]")  # the CLI's default
    page.check("#impostors input[value=other_artists]")  # calibrate on the catalog's other artists instead
    page.click("#run")
    page.wait_for_url("**/jobs/*")
    _wait_done(page)
    text = page.text_content("#likelihood-ratio")
    assert "Likelihood ratio" in text and float(text.split(":")[1].split("(")[0]) > 0
    lo, hi = (float(x) for x in page.text_content("#lr-interval").split("–"))
    assert 0 < lo <= hi
    assert 0 < float(page.text_content("#probability")) < 1
    closest = page.locator("#closest a").evaluate_all("els => els.map(a => a.getAttribute('href'))")
    assert sorted(closest) == sorted(f"/images/{i}" for i in ids[1:])  # never the questioned work itself
    assert page.text_content("#impostor-set").split() == (
        "Impostors (other artists in the catalog): the catalogued works of artists other than Reference Painter: "
        "3 works by 1 artist (Other Hand).").split()
    shown = page.locator("#impostor-images a").evaluate_all("els => els.map(a => a.getAttribute('href'))")
    assert shown == [f"/images/{i}" for i in others]
    captions = page.locator(".gradcam figcaption").all_text_contents()
    assert captions[0] == f"Grad-CAM of the questioned work #{ids[0]}"
    assert captions[1] == f"Grad-CAM of the closest reference work #{closest[0].rsplit('/', 1)[1]}"
    widths = _images_loaded(page, ".gradcam img")
    assert len(widths) == 2 and min(widths) > 0
    page.screenshot(path=str(shots / "verify-reference.png"), full_page=True)


def test_no_request_leaves_the_machine(page, server):
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(server) else None)
    page.goto("/")
    page.goto("/upload")
    page.goto("/jobs")
    assert outside == []

