"""AIC, Artsy and WikiArt collectors: field mapping to the normalised columns, paging, tokens, robots.txt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from collect_helpers import FAST, load, read_csv, run_cli

from artlens.collect.aic import map_aic
from artlens.collect.artsy import image_url, map_artsy
from artlens.collect.met import map_met
from artlens.collect.testing import ReplayServer, ReplaySite
from artlens.collect.wikiart import map_wikiart


def by_id(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {r["source_id"]: r for r in rows}


# -- mapping, without a server -----------------------------------------------------------------------------
def test_map_met_restricted_and_small() -> None:
    obj = load("met")["objects"][0]
    assert map_met(obj, small_images=True).image_url == "{BASE}/img/CRDImages/ep/web-large/DT1567.jpg"
    rec = map_met({**obj, "isPublicDomain": False, "primaryImage": ""})
    assert rec.license == "restricted (see source)" and rec.public_domain is False
    assert rec.image_url == "{BASE}/img/CRDImages/ep/web-large/DT1567.jpg"  # falls back to the small image


def test_map_aic() -> None:
    rec = map_aic(load("aic")["artworks"][0], "https://www.artic.edu/iiif/2", "https://www.artic.edu")
    assert rec.image_url == "https://www.artic.edu/iiif/2/2d484387-2509-5e8e-2c43-22f9981972eb/full/843,/0/default.jpg"
    assert (rec.source_id, rec.title, rec.artist, rec.date, rec.year_start, rec.year_end) == (
        "27992", "A Sunday on La Grande Jatte — 1884", "Georges Seurat", "1884–86", 1884, 1886)
    assert (rec.classification, rec.medium, rec.style, rec.genre, rec.license) == (
        "Painting", "Oil on canvas", "Pointillism", "leisure; landscapes; parks", "CC0-1.0")
    assert rec.source_url == "https://www.artic.edu/artworks/27992"


def test_map_artsy() -> None:
    kiss, trees, turner, _ = load("artsy")["artworks"]
    rec = map_artsy(kiss, ["Gustav Klimt"])
    assert (rec.source_id, rec.title, rec.artist, rec.date, rec.year_start, rec.year_end) == (
        "4d8b92eb4eb68a1b2c000968", "Der Kuss (The Kiss)", "Gustav Klimt", "1907-1908", 1907, 1908)
    assert rec.image_url == "{BASE}/img/artsy/4d8b92eb/large.jpg"
    assert rec.classification == "Painting" and rec.license == "Courtesy Österreichische Galerie Belvedere"
    assert rec.source_url == "https://www.artsy.net/artwork/gustav-klimt-der-kuss-the-kiss"
    assert image_url(trees) == "{BASE}/img/artsy/516dfb9a/medium.jpg"  # no 'large': the best it has
    assert map_artsy(trees).license == "see source (Artsy terms)"
    assert map_artsy(turner).year_start == 1820


def test_map_wikiart() -> None:
    w = load("wikiart")
    rec = map_wikiart(w["artists"]["claude-monet"][0], w["details"]["211727"], "https://www.wikiart.org")
    assert (rec.source_id, rec.title, rec.artist, rec.date, rec.style, rec.genre, rec.medium) == (
        "211727", "Impression, sunrise", "Claude Monet", "1872", "Impressionism", "marina", "oil, canvas")
    assert rec.source_url == "https://www.wikiart.org/en/claude-monet/impression-sunrise"
    assert rec.license.startswith("unknown")
    rec = map_wikiart(w["artists"]["claude-monet"][1], w["details"]["212021"])
    assert rec.medium == "oil, canvas" and rec.genre == "flower painting"


# -- AIC ----------------------------------------------------------------------------------------------------------
def test_aic_collect(server: ReplayServer, site: ReplaySite, tmp_path: Path,
                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "aic"
    code, stdout, err = run_cli(["collect", "aic", "--base-url", server.base_url, "--out", out, *FAST, "--json"],
                                capsys)
    assert code == 0, err
    assert json.loads(stdout)["new"] == 3
    rows = by_id(read_csv(out / "labels.csv"))
    assert set(rows) == {"27992", "28560", "14598"}
    assert rows["27992"]["file"] == "images/aic-27992.jpg" and rows["27992"]["style"] == "Pointillism"
    iiif = f"{server.base_url}/iiif/2/2d484387-2509-5e8e-2c43-22f9981972eb/full/843,/0/default.jpg"
    assert rows["27992"]["image_url"] == iiif
    assert rows["14598"]["medium_class"] == "gouache-watercolour"
    skipped = {r["source_id"]: r["reason"] for r in read_csv(out / "skipped.csv")}
    assert skipped == {"111628": "not public domain", "4575": "no image"}
    pages = [p for _, p, _ in site.requests if p.startswith("/api/v1/artworks")]
    assert len(pages) == 2 and "page=2" in pages[1]  # 5 records, 3 a page


def test_aic_search_and_restricted(server: ReplayServer, site: ReplaySite, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "aic"
    code, _, _ = run_cli(["collect", "aic", "--base-url", server.base_url, "--out", out, *FAST, "--query", "hopper",
                          "--include-restricted"], capsys)
    assert code == 0 and set(by_id(read_csv(out / "labels.csv"))) == {"111628"}
    assert by_id(read_csv(out / "labels.csv"))["111628"]["license"] == "restricted (see source)"
    assert any(p.startswith("/api/v1/artworks/search?q=hopper") for _, p, _ in site.requests)


# -- Artsy --------------------------------------------------------------------------------------------------------
def artsy(server: ReplayServer, out: Path, *extra: object) -> list[object]:
    return ["collect", "artsy", "--base-url", server.base_url, "--out", out, *FAST, "--json", *extra]


def test_artsy_collect(server: ReplayServer, site: ReplaySite, tmp_path: Path,
                       capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARTSY_TOKEN", "test-token")
    out = tmp_path / "artsy"
    code, stdout, err = run_cli(artsy(server, out, "--classification", "painting", "--classification", "engraving",
                                      "--classification", "gouache-watercolour"), capsys)
    assert code == 0, err
    rows = by_id(read_csv(out / "labels.csv"))
    assert set(rows) == {"4d8b92eb4eb68a1b2c000968", "516dfb9ab31e2b2270000c45", "5200aa1c8b3b81c5a40001b4"}
    kiss = rows["4d8b92eb4eb68a1b2c000968"]
    assert kiss["artist"] == "Gustav Klimt" and kiss["medium_class"] == "painting"
    assert kiss["image_url"] == f"{server.base_url}/img/artsy/4d8b92eb/large.jpg"
    assert rows["516dfb9ab31e2b2270000c45"]["medium_class"] == "engraving"
    assert rows["5200aa1c8b3b81c5a40001b4"]["medium_class"] == "gouache-watercolour"
    assert "classification 'Sculpture'" in read_csv(out / "skipped.csv")[0]["reason"]
    # HAL next links point at api.artsy.net: they were re-based onto the local server (this test is offline)
    listing = [p for _, p, _ in site.requests if p.startswith("/api/artworks")]
    assert listing[0] == "/api/artworks?size=50" and listing[1].startswith("/api/artworks?cursor=3")
    assert len(listing) == 3  # the third page is empty: stop


@pytest.mark.parametrize(("token", "code", "message"), [
    (None, 7, "error: Artsy needs an app token: pass --token or set ARTSY_TOKEN"),
    ("expired", 9, "error: Artsy refused the app token (HTTP 401"),
])
def test_artsy_token_errors(server: ReplayServer, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                            monkeypatch: pytest.MonkeyPatch, token: str | None, code: int, message: str) -> None:
    monkeypatch.delenv("ARTSY_TOKEN", raising=False)
    extra = [] if token is None else ["--token", token]
    got, _, err = run_cli(artsy(server, tmp_path / "o", *extra), capsys)
    assert got == code and err.startswith(message) and err.count("\n") == 1


# -- WikiArt ------------------------------------------------------------------------------------------------------
def wikiart(server: ReplayServer, out: Path, *extra: object) -> list[object]:
    return ["collect", "wikiart", "--base-url", server.base_url, "--out", out, *FAST, "--json", *extra]


def test_wikiart_by_artist(server: ReplayServer, site: ReplaySite, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "w"
    code, stdout, err = run_cli(wikiart(server, out, "--artist", "claude-monet"), capsys)
    assert code == 0, err
    rows = by_id(read_csv(out / "labels.csv"))
    assert set(rows) == {"211727", "212021"}
    assert rows["211727"]["style"] == "Impressionism" and rows["211727"]["genre"] == "marina"
    assert rows["211727"]["source_url"] == f"{server.base_url}/en/claude-monet/impression-sunrise"
    assert site.requests[0][1] == "/robots.txt"


def test_wikiart_by_style_pages(server: ReplayServer, site: ReplaySite, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "w"
    code, stdout, _ = run_cli(wikiart(server, out, "--style", "impressionism", "--date-to", 1890), capsys)
    assert code == 0 and set(by_id(read_csv(out / "labels.csv"))) == {"211727", "219500", "220100"}
    assert by_id(read_csv(out / "skipped.csv"))["218000"]["reason"].startswith("date c.1895 outside")
    pages = [p for _, p, _ in site.requests if "paintings-by-style" in p]
    assert len(pages) == 2  # 4 paintings, 3 a page, AllPaintingsCount reached


def test_wikiart_robots_and_bad_input(server: ReplayServer, site: ReplaySite, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    site.robots_txt = "User-agent: *\nDisallow: /en/App/Painting/ImageJson/\n"
    code, stdout, _ = run_cli(wikiart(server, tmp_path / "a", "--artist", "claude-monet"), capsys)
    assert code == 0 and json.loads(stdout)["new"] == 0
    assert {r["reason"] for r in read_csv(tmp_path / "a" / "skipped.csv")} == {"disallowed by robots.txt"}
    assert not any("ImageJson" in p for _, p, _ in site.requests)
    site.robots_txt = "User-agent: artlens\nDisallow: /\n"
    code, _, err = run_cli(wikiart(server, tmp_path / "b", "--artist", "claude-monet"), capsys)
    assert code == 9 and "robots.txt of http://127.0.0.1" in err and "disallows" in err
    site.robots_txt = ""
    code, _, err = run_cli(wikiart(server, tmp_path / "c", "--artist", "nobody"), capsys)
    assert code == 9 and "but got an HTML page" in err
    code, _, err = run_cli(wikiart(server, tmp_path / "d"), capsys)
    assert code == 7 and "give exactly one of --artist" in err
