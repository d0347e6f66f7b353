"""Server-rendered pages (jinja2): collection, image, upload, analysis forms, jobs and their results."""

from __future__ import annotations

import hmac
import math
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from artlens.errors import ArtlensError
from artlens.web.analyses import KINDS
from artlens.web.api import analysis_files, job_status, overlay_list, queue_job, store_upload
from artlens.web.deps import error_status, open_catalog
from artlens.web.security import TOKEN_COOKIE

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 48


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    return request.app.state.templates.TemplateResponse(request, template, context, status_code=status)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    return render(request, "error.html", status=status, status_code=status, message=message)


def _name(row: dict[str, Any]) -> str:
    return Path(row["path"]).name


# --- collection ------------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def collection(request: Request, q: str = "", modality: str = "", analysis: str = "", artist: str = "",
               page: int = 1) -> HTMLResponse:
    """Thumbnails of the catalogued images, filtered by modality, artist (of the artwork record), analysis method
    and text, paginated."""
    page = max(1, page)
    with open_catalog(request) as cat:
        found = cat.browse(modality=modality, artist=artist, method=analysis, text=q, offset=(page - 1) * PAGE_SIZE,
                           limit=PAGE_SIZE)
        pages = max(1, math.ceil(found["total"] / PAGE_SIZE))
        if page > pages:  # past the end: show the last page
            page = pages
            found = cat.browse(modality=modality, artist=artist, method=analysis, text=q,
                               offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    cards = [{"id": r["id"], "name": _name(r), "modality": r["modality"], "size": f"{r['width_px']}×{r['height_px']}",
              "methods": r["methods"], "title": r["title"], "artist": r["artist"]} for r in found["rows"]]

    def link(p: int) -> str:
        return "/?" + urlencode({"q": q, "modality": modality, "analysis": analysis, "artist": artist, "page": p})

    return render(request, "collection.html", cards=cards, total=found["total"], page=page, pages=pages,
                  prev_url=link(page - 1) if page > 1 else None, next_url=link(page + 1) if page < pages else None,
                  q=q, modality=modality, analysis=analysis, artist=artist,
                  modalities=found["modalities"], artists=found["artists"], methods=found["methods"])


# --- one image -------------------------------------------------------------------------------------------


@router.get("/images/{image_id}", response_class=HTMLResponse)
def image_page(request: Request, image_id: int, analysis: int | None = None) -> HTMLResponse:
    """Deep zoom, overlays of its analyses, a swipe against a same-size image, metadata and provenance."""
    with open_catalog(request) as cat:
        row = cat.get_image(image_id)
        if row is None:
            return error_page(request, 404, f"there is no image {image_id}")
        analyses = cat.analyses(image_id=image_id)
        artwork = next((a for a in cat.artworks() if a["id"] == row["artwork_id"]), None)
        partners = [{"id": r["id"], "name": _name(r), "modality": r["modality"]} for r in cat.images()
                    if r["id"] != image_id and r["width_px"] == row["width_px"] and r["height_px"] == row["height_px"]]
    items = []
    for a in analyses:
        files = {p.name: f"/analyses/{a['id']}/files/{p.name}" for p in analysis_files(a)}
        items.append({"id": a["id"], "method": a["method"], "created_utc": a["created_utc"][:19],
                      "report": files.get("report.html"), "summary": _short_summary(a["summary"]),
                      "overlays": overlay_list(a, row)})
    selected = next((i for i in items if i["id"] == analysis), None) or next((i for i in items if i["overlays"]), None)
    return render(request, "image.html", image=row, name=_name(row), analyses=items, artwork=artwork,
                  partners=partners, selected=selected, kinds=KINDS)


def _short_summary(summary: dict[str, Any]) -> str:
    parts = []
    for d in ("horizontal", "vertical"):
        mean = ((summary.get(d) or {}).get("threads_per_cm") or {}).get("mean")
        if mean is not None:
            parts.append(f"{d} {mean:.2f} threads/cm")
    for key, label in (("same_artist_probability", "same-artist probability"),
                       ("same_roll_probability", "same-roll probability")):
        if summary.get(key) is not None:
            parts.append(f"{label} {summary[key]:.3f}")
    return "; ".join(parts)


# --- upload ----------------------------------------------------------------------------------------------


@router.get("/upload", response_class=HTMLResponse)
def upload_form(request: Request) -> HTMLResponse:
    return render(request, "upload.html", error=None)


@router.post("/upload", response_class=HTMLResponse)
def upload(request: Request, file: UploadFile = File(...), px_per_cm: str = Form(""),
           modality: str = Form("xray"), artist: str = Form(""), title: str = Form("")) -> Response:
    try:
        made = store_upload(request, file, px_per_cm, modality, artist, title)
    except ArtlensError as exc:
        return render(request, "upload.html", status=error_status(exc), error=str(exc))
    return RedirectResponse(f"/images/{made['id']}", status_code=303)


# --- analyses --------------------------------------------------------------------------------------------


FORM_FIELDS = {
    "threads.count": ("image", "px_per_cm", "window_cm", "step_cm", "method"),
    "beneath.compare": ("image", "other", "method", "modality"),
    "verify": ("image", "other"),
    "verify.reference": ("image", "artist", "references", "impostor_set", "impostors", "impostor_artists",
                         "impostor_source"),
    "canvas.compare": ("image", "other", "density_only"),
    "canvas.match": ("images", "density_only", "threshold"),
    "search": ("image", "k"),
    "paintings.map": ("artist", "source", "method"),
    "classify": ("image", "model", "top_k"),
}


def _images_for_forms(request: Request) -> list[dict[str, Any]]:
    with open_catalog(request) as cat:
        artists = {a["id"]: a["artist"] for a in cat.artworks()}
        return [{"id": r["id"], "name": _name(r), "modality": r["modality"], "px_per_cm": r["px_per_cm"],
                 "artist": artists.get(r["artwork_id"])} for r in cat.images()]


@router.get("/run/{kind}", response_class=HTMLResponse)
def run_form(request: Request, kind: str, image: int | None = None, other: int | None = None) -> HTMLResponse:
    if kind not in KINDS:
        return error_page(request, 404, f"no analysis {kind!r}")
    return render(request, "run.html", kind=kind, title=KINDS[kind].title, images=_images_for_forms(request),
                  image=image, other=other, error=None, **_form_choices(request, kind))


def _form_choices(request: Request, kind: str) -> dict[str, Any]:
    """Options a form offers that come from the library or the catalog (e.g. the beneath methods, default
    first; the artists and sources of the catalogued artworks)."""
    if kind == "verify.reference":
        with open_catalog(request) as cat:
            artworks = cat.artworks()
        return {"artists": sorted({a["artist"] for a in artworks if a["artist"]}),
                "sources": sorted({a["source"] for a in artworks if a["source"]})}
    if kind == "paintings.map":
        import importlib.util

        from artlens.web.analyses import MAP_METHODS

        with open_catalog(request) as cat:
            artworks = cat.artworks()
        return {"artists": sorted({a["artist"] for a in artworks if a["artist"]}),
                "sources": sorted({a["source"] for a in artworks if a["source"]}),
                "methods": [m for m in MAP_METHODS if m != "umap" or importlib.util.find_spec("umap")]}
    if kind == "canvas.match":
        from artlens.canvas.clusters import CLUSTER_LINKAGE, CLUSTER_THRESHOLD

        return {"threshold": CLUSTER_THRESHOLD, "linkage": CLUSTER_LINKAGE}
    if kind != "beneath.compare":
        return {}
    from artlens.beneath.compare import DEFAULT_METHOD, METHODS

    return {"methods": [DEFAULT_METHOD, *[m for m in METHODS if m != DEFAULT_METHOD]]}


@router.post("/run/{kind}", response_class=HTMLResponse)
async def run_submit(request: Request, kind: str) -> Response:
    if kind not in KINDS:
        return error_page(request, 404, f"no analysis {kind!r}")
    form = await request.form()
    params: dict[str, Any] = {}
    for key in FORM_FIELDS[kind]:
        if key in ("images", "references", "impostors", "impostor_artists"):
            params[key] = form.getlist(key)
        elif key == "density_only":
            params[key] = form.get(key) == "on"
        elif form.get(key) not in (None, ""):
            params[key] = form.get(key)
    image = params.pop("image", None)
    try:
        from starlette.concurrency import run_in_threadpool

        job_id = await run_in_threadpool(queue_job, request, kind, image, params)
    except ArtlensError as exc:
        return render(request, "run.html", status=error_status(exc), kind=kind, title=KINDS[kind].title,
                      images=await run_in_threadpool(_images_for_forms, request), image=image,
                      other=params.get("other"), error=str(exc), chosen=params,
                      **await run_in_threadpool(_form_choices, request, kind))
    return RedirectResponse(f"/jobs/{job_id}", status_code=303)


# --- jobs ------------------------------------------------------------------------------------------------


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(request: Request) -> HTMLResponse:
    with open_catalog(request) as cat:
        jobs = [job_status(j) for j in cat.jobs(limit=200)]
    return render(request, "jobs.html", jobs=jobs, kinds=KINDS)


@router.post("/jobs/{job_id}/cancel")
def cancel(request: Request, job_id: int) -> Response:
    with open_catalog(request) as cat:
        cat.cancel_job(job_id)
    return RedirectResponse(f"/jobs/{job_id}", status_code=303)


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, job_id: int) -> HTMLResponse:
    """A job's progress (the page polls ``/api/jobs/{id}``), then its result."""
    with open_catalog(request) as cat:
        job = cat.get_job(job_id)
        if job is None:
            return error_page(request, 404, f"there is no job {job_id}")
        analysis = cat.get_analysis(job["analysis_id"]) if job["analysis_id"] else None
    status = job_status(job)
    report = None
    if analysis is not None:
        names = {p.name for p in analysis_files(analysis)}
        if "report.html" in names:
            report = f"/analyses/{analysis['id']}/files/report.html"
    result = job["result"] or {}
    extra: dict[str, Any] = {}
    if job["kind"] == "canvas.match" and job["state"] == "done":
        plates = [p["name"] for p in result.get("plates", [])]
        extra["matrix"] = list(zip(plates, result.get("matrix", []), strict=False))
        extra["names"] = plates
        extra["ids"] = result.get("image_ids", {})
        report = f"/jobs/{job_id}/files/match/report.html"
    if job["kind"] == "threads.count" and job["state"] == "done":
        extra["checks"] = thread_checks(result)
    if job["kind"] == "paintings.map" and job["state"] == "done":
        extra["map"] = map_figure(result.get("points", []))
    if job["kind"] in ("verify", "verify.reference", "classify") and job["state"] == "done":
        extra["gradcam"] = gradcam_figures(job_id, job["kind"], result)
    return render(request, "job.html", job=status, title=KINDS[job["kind"]].title if job["kind"] in KINDS
                  else job["kind"], report=report, result=result, **extra)


def thread_checks(result: dict[str, Any]) -> list[str]:
    """The report's "check here" notes of a thread count other than the second opinion's (shown on its own):
    octave doubts and directions where few windows agree."""
    from artlens.canvas.threads.run import check_notes

    parts = [result.get("spectral", {}), result.get("cnn", {})] if result.get("method") == "both" else [result]
    return [note for s in parts for note in check_notes(s)]


def gradcam_figures(job_id: int, kind: str, result: dict[str, Any]) -> list[dict[str, str]]:
    """The Grad-CAM overlays a finished ``verify``, ``verify.reference`` or ``classify`` job wrote into its
    folder, as ``{"url", "caption", "tag"}`` for the result page (side by side)."""
    heatmaps = result.get("heatmaps") or {}
    if kind == "verify":
        captions = {"a": "Grad-CAM of A", "b": "Grad-CAM of B"}
    elif kind == "verify.reference":
        captions = {"a": f"Grad-CAM of the questioned work #{result.get('image')}",
                    "b": f"Grad-CAM of the closest reference work #{result.get('heatmaps_against')}"}
    else:
        label = result.get("heatmap_label")
        captions = {"global": f"Grad-CAM of {label}: whole image",
                    "tiles": f"Grad-CAM of {label}: full-resolution tiles"}
    return [{"url": f"/jobs/{job_id}/files/{Path(v).name}", "caption": captions.get(k, k), "tag": k}
            for k, v in heatmaps.items() if isinstance(v, str)]


MAP_W, MAP_H, MAP_PAD = 960, 640, 40
MAP_THUMBNAILS = 150
"""Up to this many points are drawn as thumbnails; larger maps draw dots (each still a link)."""
MAP_COLOURS = ("#3b5b8c", "#c0392b", "#27864a", "#d68910", "#7d3c98", "#148f77", "#b9770e", "#5d6d7e",
               "#cb4335", "#2471a3")


def map_figure(points: list[dict[str, Any]]) -> dict[str, Any]:
    """Where the map page draws each point (SVG user units) and its colour (by artist: the ten most frequent,
    the others and unknown grey), with the legend."""
    from collections import Counter

    counts = Counter(p.get("artist") for p in points if p.get("artist"))
    colour = {a: MAP_COLOURS[k] for k, (a, _) in enumerate(counts.most_common(len(MAP_COLOURS)))}
    thumbs = len(points) <= MAP_THUMBNAILS
    size = 44 if len(points) <= 40 else 28
    drawn = [p | {"cx": round(MAP_PAD + p["u"] * (MAP_W - 2 * MAP_PAD), 1),
                  "cy": round(MAP_PAD + (1 - p["v"]) * (MAP_H - 2 * MAP_PAD), 1),
                  "colour": colour.get(p.get("artist"), "#8a8f94")} for p in points]
    legend = [{"artist": a, "colour": c} for a, c in colour.items()]
    if any(p["colour"] == "#8a8f94" for p in drawn):
        legend.append({"artist": "other / unknown", "colour": "#8a8f94"})
    return {"points": drawn, "width": MAP_W, "height": MAP_H, "thumbnails": thumbs, "size": size,
            "legend": legend}


@router.get("/jobs/{job_id}/pair/{i}/{j}", response_class=HTMLResponse)
def match_pair(request: Request, job_id: int, i: int, j: int) -> HTMLResponse:
    """One cell of a canvas-match matrix: the two plates and their row of ``pairs.csv``."""
    import csv

    with open_catalog(request) as cat:
        job = cat.get_job(job_id)
    if job is None or job["kind"] != "canvas.match" or job["state"] != "done":
        return error_page(request, 404, f"job {job_id} is not a finished canvas match")
    names = [p["name"] for p in job["result"]["plates"]]
    if not (0 <= i < len(names) and 0 <= j < len(names)) or i == j:
        return error_page(request, 404, "no such pair")
    a, b = names[i], names[j]
    with open(job["result"]["files"]["pairs_csv"], newline="") as fh:
        row = next((r for r in csv.DictReader(fh) if {r["a"], r["b"]} == {a, b}), None)
    if row is None:
        return error_page(request, 404, "no such pair")
    return render(request, "pair.html", job_id=job_id, a=a, b=b, row=row, ids=job["result"]["image_ids"])


@router.get("/api", response_class=HTMLResponse)
def api_page(request: Request) -> HTMLResponse:
    """The API's routes from its OpenAPI schema (``/api/openapi.json``)."""
    schema = request.app.openapi()
    routes = [{"method": m.upper(), "path": p, "summary": op.get("summary", ""), "doc": op.get("description", "")}
              for p, ops in schema["paths"].items() for m, op in ops.items()]
    return render(request, "api.html", routes=routes)


# --- login (only with --token) ---------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    return render(request, "login.html", next=_local(next), error=None)


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, token: str = Form(""), next: str = Form("/")) -> Response:
    expected = request.app.state.config.token
    if expected is None:
        return RedirectResponse(_local(next), status_code=303)
    if not hmac.compare_digest(token.encode(), expected.encode()):
        return render(request, "login.html", status=401, next=_local(next), error="wrong token")
    resp = RedirectResponse(_local(next), status_code=303)
    resp.set_cookie(TOKEN_COOKIE, expected, httponly=True, samesite="strict")
    return resp


def _local(url: str) -> str:
    """Only a path on this server (no open redirect)."""
    return url if url.startswith("/") and not url.startswith("//") else "/"
