"""``artlens collect met`` end to end against the replay server: mapping, filters, faults, reruns, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from collect_helpers import FAST, read_csv, run_cli

from artlens.catalog import Catalog
from artlens.collect import LABEL_COLUMNS, medium_class
from artlens.collect.base import JOURNAL_NAME, Journal
from artlens.collect.testing import ReplayServer, ReplaySite, make_image

OBJECTS = "/public/collection/v1/objects/"
GOOD = {"436535", "436105", "336222", "11170", "283066", "437984"}  # public domain with an image


def met(server: ReplayServer, out: Path, *extra: object) -> list[object]:
    return ["collect", "met", "--base-url", server.base_url, "--out", out, *FAST, "--json", *extra]


def test_met_end_to_end(server: ReplayServer, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                        _isolated_catalog: Path) -> None:
    out = tmp_path / "coll"
    code, stdout, err = run_cli(met(server, out, "--query", "*"), capsys)
    assert code == 0, err
    res = json.loads(stdout)
    assert (res["new"], res["skipped"], res["failed"], res["total"]) == (6, 2, 0, 6)

    rows = read_csv(out / "labels.csv")
    assert list(rows[0]) == list(LABEL_COLUMNS)
    assert {r["source_id"] for r in rows} == GOOD
    for r in rows:
        assert r["file"] == f"images/met-{r['source_id']}.jpg" and (out / r["file"]).is_file()
        assert r["license"] == "CC0-1.0" and r["source"] == "met"
    wheat = next(r for r in rows if r["source_id"] == "436535")
    assert wheat == {**wheat, "title": "Wheat Field with Cypresses", "artist": "Vincent van Gogh", "date": "1889",
                     "medium": "Oil on canvas", "classification": "Paintings", "medium_class": "painting",
                     "source_url": "https://www.metmuseum.org/art/collection/search/436535",
                     "image_url": server.base_url + "/img/CRDImages/ep/original/DT1567.jpg",
                     "width": "64", "height": "48"}
    classes = {r["source_id"]: r["medium_class"] for r in rows}
    assert classes["336222"] == "engraving" and classes["11170"] == "gouache-watercolour"
    assert classes["283066"] == "photography"

    skipped = {r["source_id"]: r["reason"] for r in read_csv(out / "skipped.csv")}
    assert skipped == {"488221": "not public domain", "248132": "no image"}

    with Catalog(_isolated_catalog) as cat:
        arts = cat.artworks(source="met")
        images = cat.images()
    assert {a["source_id"] for a in arts} == GOOD and len(images) == 6
    assert all(i["artwork_id"] is not None and i["modality"] == "rgb" for i in images)
    assert next(a for a in arts if a["source_id"] == "436535")["license"] == "CC0-1.0"

    # a rerun is a no-op
    code, stdout, _ = run_cli(met(server, out, "--query", "*"), capsys)
    res = json.loads(stdout)
    assert code == 0 and res["new"] == 0 and res["already_done"] == 8 and res["total"] == 6
    assert len(read_csv(out / "labels.csv")) == 6
    code, stdout, _ = run_cli(["collect", "met", "--base-url", server.base_url, "--out", out, *FAST], capsys)
    assert code == 0 and stdout.startswith("met: 0 new,")


def test_search_parameters(server: ReplayServer, site: ReplaySite, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, _ = run_cli(met(server, tmp_path / "o", "--query", "degas", "--department", 11,
                                  "--date-from", 1800, "--date-to", 1900), capsys)
    assert code == 0 and json.loads(stdout)["new"] == 1
    search = [p for _, p, _ in site.requests if "/search" in p]
    assert search == ["/public/collection/v1/search?q=degas&hasImages=true&departmentId=11&dateBegin=1800&dateEnd=1900"]
    assert any(p.endswith("/departments") for _, p, _ in site.requests)


@pytest.mark.parametrize(("args", "expected"), [
    (["--classification", "painting"], {"436535", "436105", "437984"}),
    (["--classification", "Prints", "--classification", "photography"], {"336222", "283066"}),
    (["--classification", "gouache-watercolour"], {"11170"}),
    (["--date-from", "1850", "--date-to", "1880"], {"283066", "437984"}),
    (["--limit", "2"], {"436535", "436105"}),
    (["--include-restricted"], GOOD),  # the restricted one has no image: skipped for that reason instead
])
def test_filters(server: ReplayServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                 expected: set[str]) -> None:
    out = tmp_path / "o"
    code, _, err = run_cli(met(server, out, *args), capsys)
    assert code == 0, err
    assert {r["source_id"] for r in read_csv(out / "labels.csv")} == expected
    if args == ["--include-restricted"]:
        assert {r["source_id"]: r["reason"] for r in read_csv(out / "skipped.csv")}["488221"] == "no image"


def test_fault_run(server: ReplayServer, site: ReplaySite, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """404, 500-then-OK, 429 with Retry-After, corrupt image, duplicate image, HTML and malformed JSON for objects."""
    site.fault(OBJECTS + "436105", "404", times=None)
    site.fault(OBJECTS + "336222", "500", times=1)
    site.fault(OBJECTS + "11170", "429", times=1, retry_after="1")
    site.fault("/img/CRDImages/ph/original/DP135929.jpg", "corrupt", times=None)
    dup = make_image("/img/CRDImages/ep/original/DT1567.jpg")
    site.images["/img/CRDImages/ep/original/DT1946.jpg"] = dup  # 437984 shows the same bytes as 436535
    site.fault(OBJECTS + "436535", "html", times=1)
    out = tmp_path / "o"
    code, stdout, err = run_cli(met(server, out), capsys)
    assert code == 0, err
    res = json.loads(stdout)
    assert (res["new"], res["skipped"], res["failed"]) == (3, 4, 1), res
    skipped = {r["source_id"]: r["reason"] for r in read_csv(out / "skipped.csv")}
    assert skipped["436105"] == "HTTP 404 (not found)"
    assert skipped["283066"].startswith("corrupt image")
    assert skipped["436535"].startswith("temporary, retried next run: expected JSON from") and "HTML" in skipped[
        "436535"]
    kept = {r["source_id"] for r in read_csv(out / "labels.csv")}
    assert kept == {"336222", "11170", "437984"}  # 437984 came first, so 436535 will be its duplicate
    assert not list((out / "images").glob(".*.part"))

    # the temporary failure is retried and lands as a duplicate of 437984: every good image once
    code, stdout, _ = run_cli(met(server, out), capsys)
    res = json.loads(stdout)
    assert (res["new"], res["skipped"], res["failed"]) == (0, 1, 0)
    skipped = {r["source_id"]: r["reason"] for r in read_csv(out / "skipped.csv")}
    assert skipped["436535"] == "duplicate image of met:437984"
    assert len(read_csv(out / "labels.csv")) == 3
    code, stdout, _ = run_cli(met(server, out), capsys)
    assert json.loads(stdout)["new"] == 0


def test_malformed_object_is_retried(server: ReplayServer, site: ReplaySite, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    site.fault(OBJECTS + "436535", "malformed", times=1)
    out = tmp_path / "o"
    res = json.loads(run_cli(met(server, out), capsys)[1])
    assert res["failed"] == 1
    assert "malformed JSON" in {r["source_id"]: r["reason"] for r in read_csv(out / "skipped.csv")}["436535"]
    res = json.loads(run_cli(met(server, out), capsys)[1])
    assert res["new"] == 1 and "436535" not in {r["source_id"] for r in read_csv(out / "skipped.csv")}


@pytest.mark.parametrize(("setup", "args", "code", "message"), [
    (None, ["--department", "99"], 7, r"unknown Met department 99; valid ids: 9 \(Drawings and Prints\), 11 "),
    (("/public/collection/v1/search", "html"), [], 9, "expected JSON from .*/search.* but got an HTML page"),
    (("/public/collection/v1/search", "malformed"), [], 9, "malformed JSON from .*/search"),
    (("/public/collection/v1/search", "403"), [], 9, "HTTP 403"),
    (None, ["--rate", "0"], 7, "--rate must be > 0"),
    (None, ["--date-from", "1900", "--date-to", "1800"], 7, "--date-from 1900 is after --date-to 1800"),
])
def test_bad_input(server: ReplayServer, site: ReplaySite, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                   setup: tuple[str, str] | None, args: list[str], code: int, message: str) -> None:
    import re

    if setup:
        site.fault(setup[0], setup[1], times=None)
    got, stdout, err = run_cli(met(server, tmp_path / "o", *args), capsys)
    assert got == code and stdout == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
    assert re.search(message, err), err


def test_unreachable_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, _, err = run_cli(["collect", "met", "--base-url", f"http://127.0.0.1:{port}", "--out", tmp_path / "o",
                            *FAST, "--retries", "1"], capsys)
    assert code == 9 and err.startswith("error: cannot fetch http://127.0.0.1:") and err.count("\n") == 1


def test_foreign_files_are_never_overwritten(server: ReplayServer, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o"
    out.mkdir()
    (out / "labels.csv").write_text("mine\n")
    code, _, err = run_cli(met(server, out), capsys)
    assert code == 7 and "was not written by artlens collect" in err
    assert (out / "labels.csv").read_text() == "mine\n"

    out2 = tmp_path / "o2"
    (out2 / "images").mkdir(parents=True)
    (out2 / "images" / "met-436535.jpg").write_bytes(b"a user's own file")
    code, stdout, _ = run_cli(met(server, out2), capsys)
    assert code == 0 and json.loads(stdout)["new"] == 5
    assert (out2 / "images" / "met-436535.jpg").read_bytes() == b"a user's own file"
    reason = {r["source_id"]: r["reason"] for r in read_csv(out2 / "skipped.csv")}["436535"]
    assert "already exists and was not written by artlens collect" in reason


def test_consecutive_failures_stop_the_run(server: ReplayServer, site: ReplaySite, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    for oid in GOOD | {"488221", "248132"}:
        site.fault(OBJECTS + oid, "502", times=None)
    from artlens.collect import CollectOptions, MetSource, PoliteClient, collect
    from artlens.errors import NetworkError

    with pytest.raises(NetworkError, match="stopped after 3 items in a row failed; last: HTTP 502"):
        collect(MetSource(server.base_url), tmp_path / "o", PoliteClient(rate=500, retries=0),
                CollectOptions(max_consecutive_failures=3, use_catalog=False))
    assert len(read_csv(tmp_path / "o" / "skipped.csv")) == 3


def test_journal_torn_line_and_labels_rebuilt(server: ReplayServer, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """A kill can leave half a journal line and labels.csv behind the journal; the next run repairs both."""
    out = tmp_path / "o"
    run_cli(met(server, out, "--limit", "3"), capsys)
    with open(out / JOURNAL_NAME, "ab") as fh:
        fh.write(b'{"key":"met:999","sta')
    lines = (out / "labels.csv").read_text().splitlines()
    (out / "labels.csv").write_text("\n".join(lines[:-1]) + "\n")  # lost the last row
    j = Journal(out / JOURNAL_NAME)
    assert j.ok_count == {"met": 3}
    j.close()
    assert (out / JOURNAL_NAME).read_bytes().endswith(b"\n")
    code, stdout, _ = run_cli(met(server, out), capsys)
    rows = read_csv(out / "labels.csv")
    assert code == 0 and json.loads(stdout)["new"] == 3 and len(rows) == 6 and len({r["file"] for r in rows}) == 6


def test_medium_class_mapping() -> None:
    assert medium_class("Paintings", "Oil on canvas") == "painting"
    assert medium_class("Prints", "Etching") == "engraving"
    assert medium_class("Drawings", "Black chalk") == "drawing"
    assert medium_class("Drawings", "Gouache on paper") == "gouache-watercolour"
    assert medium_class("Drawing and Watercolor", "Watercolor over graphite") == "gouache-watercolour"
    assert medium_class("Drawing, Collage or other Work on Paper", "Charcoal") == "drawing"
    assert medium_class("Photographs", "Gelatin silver print") == "photography"
    assert medium_class("Photography", "") == "photography"
    assert medium_class("Print", "Woodcut") == "engraving"
    assert medium_class("Stone Sculpture", "Marble") == ""
