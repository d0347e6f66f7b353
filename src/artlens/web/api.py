"""The JSON API under ``/api`` (documented at ``/api/docs``), and the tile and file routes the viewer uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from artlens import __version__
from artlens.errors import InvalidParameterError
from artlens.web import overlays
from artlens.web.analyses import KINDS
from artlens.web.deps import open_catalog
from artlens.web.storage import check_modality, check_px_per_cm, ingest_stream
from artlens.web.tilecache import TILE_CACHE_CONTROL, tile_etag
from artlens.web.tiles import descriptor, dzi_xml

router = APIRouter()
TILE_CACHE = TILE_CACHE_CONTROL


# --- models ----------------------------------------------------------------------------------------------


class Health(BaseModel):
    status: str = "ok"
    version: str


class ImageCreated(BaseModel):
    id: int
    sha256: str
    width_px: int
    height_px: int
    modality: str
    px_per_cm: float | None
    artwork_id: int | None = None


class JobRequest(BaseModel):
    kind: str = Field(description=f"one of: {', '.join(KINDS)}")
    image: int | None = Field(default=None, description="the image analysed (canvas.match: none; give params.images)")
    params: dict[str, Any] = Field(default_factory=dict)


class JobCreated(BaseModel):
    id: int
    state: str


class JobStatus(BaseModel):
    id: int
    kind: str
    image: int | None
    state: str = Field(description="queued, running, done, failed or cancelled")
    progress: float = Field(description="0..1")
    message: str | None
    params: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    analysis_id: int | None
    created_utc: str
    finished_utc: str | None


def job_status(job: dict[str, Any]) -> dict[str, Any]:
    """A catalog job as the API shows it."""
    return {"id": job["id"], "kind": job["kind"], "image": job["image_id"], "state": job["state"],
            "progress": job["progress"], "message": job["message"], "params": job["params"],
            "result": job["result"], "error": job["error"], "analysis_id": job["analysis_id"],
            "created_utc": job["created_utc"], "finished_utc": job["finished_utc"]}


# --- health and images -----------------------------------------------------------------------------------


@router.get("/api/health", response_model=Health, tags=["meta"])
def health() -> dict[str, str]:
    """Liveness and version."""
    return {"status": "ok", "version": __version__}


def _text_field(value: str | None, name: str) -> str | None:
    text = " ".join((value or "").split())
    if len(text) > 200:
        raise InvalidParameterError(f"{name} must be at most 200 characters, got {len(text)}")
    return text or None


def store_upload(request: Request, upload: UploadFile, px_per_cm: str | None, modality: str,
                 artist: str | None = None, title: str | None = None) -> dict[str, Any]:
    """Check, store and catalogue one uploaded image (shared by the API and the upload page). With an ``artist``
    or ``title``, an artwork record is made for an image that has none (an image already linked to an artwork
    keeps it)."""
    modality = check_modality(modality or "xray")
    artist, title = _text_field(artist, "artist"), _text_field(title, "title")
    ppc = None
    if px_per_cm not in (None, ""):
        try:
            ppc = float(px_per_cm)
        except ValueError:
            raise InvalidParameterError(f"px_per_cm must be a number, not {px_per_cm[:40]!r}") from None
    ppc = check_px_per_cm(ppc)
    cfg = request.app.state.config
    stored = ingest_stream(upload.file, cfg.data_dir, cfg.max_upload_bytes)
    ppc = ppc if ppc is not None else stored.px_per_cm
    with open_catalog(request) as cat:
        image_id = cat.add_image(stored.path, stored.sha256, modality, px_per_cm=ppc, width_px=stored.width_px,
                                 height_px=stored.height_px)
        artwork_id = (cat.get_image(image_id) or {}).get("artwork_id")
        if artwork_id is None and (artist or title):
            artwork_id = cat.add_artwork(title, artist)
            cat.add_image(stored.path, stored.sha256, modality, px_per_cm=ppc, width_px=stored.width_px,
                          height_px=stored.height_px, artwork_id=artwork_id)
    return {"id": image_id, "sha256": stored.sha256, "width_px": stored.width_px, "height_px": stored.height_px,
            "modality": modality, "px_per_cm": ppc, "artwork_id": artwork_id}


@router.post("/api/images", status_code=201, response_model=ImageCreated, tags=["images"],
             responses={413: {"description": "larger than --max-upload-mb"},
                        415: {"description": "not an image artlens can decode"},
                        422: {"description": "a bad parameter"}})
def upload_image(request: Request, file: UploadFile = File(..., description="TIFF, PNG, JPEG or BMP"),
                 px_per_cm: str | None = Form(None, description="resolution, px/cm (default: the file's tags)"),
                 modality: str = Form("xray", description="xray, rgb, ir, band@550nm, ..."),
                 artist: str | None = Form(None, description="the artist (recorded on a new artwork record)"),
                 title: str | None = Form(None, description="the work's title (likewise)")) -> dict[str, Any]:
    """Upload an image: checked by decoding it, stored under its SHA-256, recorded in the catalog."""
    return store_upload(request, file, px_per_cm, modality, artist, title)


def image_record(cat: Any, row: dict[str, Any]) -> dict[str, Any]:
    """An image row for the API: no server path, with its analyses and tile URLs."""
    analyses = cat.analyses(image_id=row["id"])
    return {"id": row["id"], "sha256": row["sha256"], "modality": row["modality"], "px_per_cm": row["px_per_cm"],
            "width_px": row["width_px"], "height_px": row["height_px"], "artwork_id": row["artwork_id"],
            "added_utc": row["added_utc"], "name": Path(row["path"]).name,
            "dzi": f"/tiles/{row['id']}.dzi", "thumbnail": f"/images/{row['id']}/thumb.jpg",
            "analyses": [{"id": a["id"], "method": a["method"], "created_utc": a["created_utc"],
                          "summary": a["summary"]} for a in analyses]}


@router.get("/api/images", tags=["images"])
def list_images(request: Request, modality: str | None = None, limit: int = 100, offset: int = 0) -> dict[str, Any]:
    """Catalogued images, oldest first (paginated)."""
    with open_catalog(request) as cat:
        rows = [r for r in cat.images() if modality is None or r["modality"] == modality]
        page = rows[max(0, offset): max(0, offset) + max(1, min(limit, 1000))]
        return {"total": len(rows), "images": [
            {"id": r["id"], "sha256": r["sha256"], "modality": r["modality"], "px_per_cm": r["px_per_cm"],
             "width_px": r["width_px"], "height_px": r["height_px"], "name": Path(r["path"]).name} for r in page]}


@router.get("/api/images/{image_id}", tags=["images"])
def get_image(request: Request, image_id: int) -> dict[str, Any]:
    """One image with its analyses."""
    with open_catalog(request) as cat:
        row = cat.get_image(image_id)
        if row is None:
            raise HTTPException(404, f"there is no image {image_id}")
        return image_record(cat, row)


# --- jobs ------------------------------------------------------------------------------------------------


@router.post("/api/jobs", status_code=202, response_model=JobCreated, tags=["jobs"])
def create_job(request: Request, body: JobRequest) -> dict[str, Any]:
    """Queue an analysis: ``threads.count``, ``beneath.compare``, ``verify``, ``canvas.compare``,
    ``canvas.match``. Poll ``GET /api/jobs/{id}``."""
    return {"id": queue_job(request, body.kind, body.image, body.params), "state": "queued"}


def queue_job(request: Request, kind: str, image: Any, params: dict[str, Any]) -> int:
    """Check and queue a job; wake a worker. Raises :class:`InvalidParameterError` (422) when wrong."""
    if kind not in KINDS:
        raise InvalidParameterError(f"unknown job kind {kind[:40]!r}; kinds: {', '.join(KINDS)}")
    with open_catalog(request) as cat:
        image_id, checked = KINDS[kind].check(cat, image, dict(params))
        job_id = cat.add_job(kind, checked, image_id=image_id)
    request.app.state.runner.notify()
    return job_id


@router.get("/api/jobs", tags=["jobs"])
def list_jobs(request: Request, state: str | None = None, limit: int = 100) -> dict[str, Any]:
    """Jobs, newest first."""
    with open_catalog(request) as cat:
        return {"jobs": [job_status(j) for j in cat.jobs(state=state, limit=max(1, min(limit, 1000)))]}


@router.get("/api/jobs/{job_id}", response_model=JobStatus, tags=["jobs"])
def get_job(request: Request, job_id: int) -> dict[str, Any]:
    """A job's state, progress (0..1), result (a threads.count result is the CLI's summary.json) or error."""
    with open_catalog(request) as cat:
        job = cat.get_job(job_id)
    if job is None:
        raise HTTPException(404, f"there is no job {job_id}")
    return job_status(job)


@router.post("/api/jobs/{job_id}/cancel", response_model=JobCreated, tags=["jobs"])
def cancel_job(request: Request, job_id: int) -> dict[str, Any]:
    """Cancel: a queued job at once, a running one at its next progress report."""
    with open_catalog(request) as cat:
        state = cat.cancel_job(job_id)
    if state is None:
        raise HTTPException(404, f"there is no job {job_id}")
    return {"id": job_id, "state": state}


# --- analyses and overlays -------------------------------------------------------------------------------


def _analysis(request: Request, analysis_id: int) -> dict[str, Any]:
    with open_catalog(request) as cat:
        a = cat.get_analysis(analysis_id)
    if a is None:
        raise HTTPException(404, f"there is no analysis {analysis_id}")
    return a


def overlay_list(analysis: dict[str, Any], image: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The overlays an analysis offers: thread maps, or beneath heatmaps."""
    out = []
    if analysis["method"].startswith("threads."):
        for name in overlays.THREAD_MAPS:
            made = overlays.thread_overlay(analysis, name)
            if made is not None:
                out.append(made[1] | {"url": f"/api/analyses/{analysis['id']}/overlays/{name}.png",
                                      "colourbar": f"/api/colourbar/{made[1]['colormap']}.png"})
    elif analysis["method"].startswith("beneath") and image is not None:
        for p in analysis["outputs"]:
            if p.endswith(".npy") and Path(p).name not in ("valid.npy",) and Path(p).is_file():
                _, meta = overlays.heatmap_overlay(Path(p), (image["height_px"], image["width_px"]))
                out.append(meta | {"url": f"/api/analyses/{analysis['id']}/overlays/{meta['name']}.png",
                                   "colourbar": "/api/colourbar/inferno.png"})
    return out


@router.get("/api/analyses/{analysis_id}", tags=["analyses"])
def get_analysis(request: Request, analysis_id: int) -> dict[str, Any]:
    """One catalogued analysis (method, parameters, version, summary, output file names) and its overlays."""
    a = _analysis(request, analysis_id)
    with open_catalog(request) as cat:
        image = cat.get_image(a["image_id"]) if a["image_id"] is not None else None
    return {"id": a["id"], "image": a["image_id"], "method": a["method"], "parameters": a["parameters"],
            "artlens_version": a["artlens_version"], "model_checksum": a["model_checksum"], "summary": a["summary"],
            "created_utc": a["created_utc"], "files": [f"/analyses/{a['id']}/files/{p.name}"
                                                       for p in analysis_files(a)],
            "overlays": overlay_list(a, image)}


@router.get("/api/analyses/{analysis_id}/overlays/{name}.png", tags=["analyses"],
            response_class=Response, responses={200: {"content": {"image/png": {}}}})
def get_overlay(request: Request, analysis_id: int, name: str) -> Response:
    """An overlay PNG (transparent where there is no value); its placement is in ``GET /api/analyses/{id}``."""
    a = _analysis(request, analysis_id)
    if a["method"].startswith("threads."):
        made = overlays.thread_overlay(a, name)
        if made is None:
            raise HTTPException(404, f"analysis {analysis_id} has no overlay {name!r}")
        return Response(made[0], media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})
    for p in a["outputs"]:
        if p.endswith(".npy") and Path(p).stem == name and Path(p).is_file():
            png, _ = overlays.heatmap_overlay(Path(p), (1, 1))
            return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})
    raise HTTPException(404, f"analysis {analysis_id} has no overlay {name!r}")


@router.get("/api/colourbar/{cmap}.png", tags=["analyses"], response_class=Response)
def colourbar(cmap: str) -> Response:
    """A colour bar of one of the overlay colour maps (low values on the left)."""
    if cmap not in ("viridis", "coolwarm", "inferno"):
        raise HTTPException(404, f"no colour map {cmap!r}")
    return Response(overlays.colourbar_png(cmap), media_type="image/png",
                    headers={"Cache-Control": "public, max-age=86400"})


# --- tiles -----------------------------------------------------------------------------------------------


def _image_row(request: Request, image_id: int) -> dict[str, Any]:
    """The image's catalog row, remembered by the app: an image's file and hash never change, and tile
    requests must not pay for a catalog query each (about 10 ms on SQLite)."""
    remembered = request.app.state.image_rows
    row = remembered.get(image_id)
    if row is None:
        with open_catalog(request) as cat:
            row = cat.get_image(image_id)
        if row is None:
            raise HTTPException(404, f"there is no image {image_id}")
        remembered[image_id] = row
    if not Path(row["path"]).is_file():
        remembered.pop(image_id, None)
        raise HTTPException(404, f"image {image_id}: its file is missing")
    return row


@router.get("/api/images/{image_id}/tiles", tags=["tiles"])
def tile_info(request: Request, image_id: int) -> dict[str, Any]:
    """The deep-zoom pyramid's geometry (DZI levels, tile size) and URLs."""
    row = _image_row(request, image_id)
    w, h = _size(request, row)
    return descriptor(w, h) | {"dzi": f"/tiles/{image_id}.dzi",
                               "tiles": f"/tiles/{image_id}_files/{{z}}/{{x}}_{{y}}.jpg"}


def _size(request: Request, row: dict[str, Any]) -> tuple[int, int]:
    if row["width_px"] and row["height_px"]:
        return int(row["width_px"]), int(row["height_px"])
    img = request.app.state.tiles.get(Path(row["path"]), row["sha256"])
    return img.width, img.height


@router.get("/tiles/{image_id}.dzi", tags=["tiles"], response_class=Response)
def dzi(request: Request, image_id: int) -> Response:
    """The Deep Zoom descriptor (OpenSeadragon and other DZI viewers can open it)."""
    row = _image_row(request, image_id)
    return Response(dzi_xml(*_size(request, row)), media_type="application/xml")


@router.get("/tiles/{image_id}_files/{level}/{col}_{row}.jpg", tags=["tiles"], response_class=Response,
            responses={200: {"content": {"image/jpeg": {}}}})
async def tile(request: Request, image_id: int, level: int, col: int, row: int) -> Response:
    """One 256 px JPEG tile of DZI ``level``, made on first request and cached on disk.

    Tiles made before are answered by :mod:`artlens.web.tilecache` before this route (from memory or disk);
    this route makes a tile, in a thread."""
    cached = await run_in_threadpool(_make_tile, request, image_id, level, col, row)
    sha = request.app.state.image_rows[image_id]["sha256"]
    return Response(cached.read_bytes(), media_type="image/jpeg",
                    headers={"Cache-Control": TILE_CACHE, "ETag": tile_etag(sha, level, col, row)})


def _make_tile(request: Request, image_id: int, level: int, col: int, row: int) -> Path:
    rec = _image_row(request, image_id)
    store = request.app.state.tiles
    cached = store.cached_tile(rec["sha256"], level, col, row)
    if cached is None:
        img = store.get(Path(rec["path"]), rec["sha256"])
        if not img.valid(level, col, row):
            raise HTTPException(404, f"no tile {level}/{col}_{row}")
        cached = img.tile(level, col, row)
    return cached


@router.get("/images/{image_id}/thumb.jpg", tags=["tiles"], response_class=FileResponse)
def thumbnail(request: Request, image_id: int) -> FileResponse:
    """The whole image in one tile (at most 256 px a side)."""
    rec = _image_row(request, image_id)
    w, h = _size(request, rec)
    store = request.app.state.tiles
    level = store.thumbnail_level(w, h)
    cached = store.cached_tile(rec["sha256"], level, 0, 0)
    if cached is None:
        cached = store.get(Path(rec["path"]), rec["sha256"]).tile(level, 0, 0)
    return FileResponse(cached, media_type="image/jpeg", headers={"Cache-Control": TILE_CACHE})


# --- result files ----------------------------------------------------------------------------------------


@router.get("/analyses/{analysis_id}/files/{name}", tags=["analyses"], response_class=FileResponse)
def analysis_file(request: Request, analysis_id: int, name: str) -> FileResponse:
    """A file the analysis wrote (report.html, summary.json, maps), found by name among its recorded outputs."""
    a = _analysis(request, analysis_id)
    for p in analysis_files(a):
        if p.name == name:
            return FileResponse(p)
    raise HTTPException(404, f"analysis {analysis_id} wrote no file {name!r}")


SIDE_FILES = ("report.html", "summary.json")


def analysis_files(analysis: dict[str, Any]) -> list[Path]:
    """The files an analysis recorded, plus the ``report.html`` / ``summary.json`` written next to them
    (some analyses, e.g. beneath compare, record only their maps)."""
    files = [Path(p) for p in analysis["outputs"] if Path(p).is_file()]
    names = {p.name for p in files}
    for folder in dict.fromkeys(p.parent for p in files):
        files += [folder / n for n in SIDE_FILES if n not in names and (folder / n).is_file()]
    return files


@router.get("/jobs/{job_id}/files/{rel:path}", tags=["jobs"], response_class=FileResponse)
def job_file(request: Request, job_id: int, rel: str) -> FileResponse:
    """A file in a job's output folder (nothing outside it)."""
    root = (request.app.state.config.data_dir / "jobs" / str(job_id)).resolve()
    path = (root / rel).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise HTTPException(404, f"job {job_id} has no file {rel!r}")
    return FileResponse(path)
