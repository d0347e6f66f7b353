"""Thread labels for learned counting: masks of labelled threads, and the density they imply.

A labelled crop is an X-ray sample (typically 1.5 x 1.5 cm at 200 px/cm) with one boolean mask per
thread direction: ``h_mask`` marks the pixels of *horizontal* threads (running left-right in the
displayed image, counted along the vertical axis), ``v_mask`` those of *vertical* threads (running
top-bottom, counted along the horizontal axis). Labels come from

- labelme JSON files (one polygon per thread, the polygon's ``label`` naming the direction), read by
  :func:`load_labelme`, or
- DL4ART-style mask pairs ``<stem>_H.npz`` / ``<stem>_V.npz`` (key ``arr_0``, bool ``(H, W)``)
  beside the image ``<stem>.tif``, read by :func:`load_dl4art_masks`.

:func:`mask_density` turns a mask into threads/cm for the whole crop or any sub-crop; it is the
training label of the thread-counting CNN. :func:`import_labels` converts a folder of labelled crops
into a dataset folder (``images/``, ``masks/``, ``labels.csv``) that :func:`load_labelled_crops` reads back.

References:
    Delgado, Murillo-Fuentes and Alba-Carcelén, "Thread Counting in Plain Weave for Old Paintings
    Using Regression Deep Learning Models", Int J Comput Vis (2025). DL4ART code and label format:
    https://github.com/gapsc-us/DL4ART
"""

from __future__ import annotations

import csv
import json
import math
import operator
import os
import shutil
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from artlens.errors import (
    InputNotFoundError,
    InvalidImageError,
    InvalidParameterError,
    UnreadableInputError,
)
from artlens.io.scan import PLATE_SUFFIXES

DIRECTIONS = ("horizontal", "vertical")
LABEL_COLUMNS = ("name", "image", "plate", "px_per_cm", "height_px", "width_px",
                 "h_threads_per_cm", "v_threads_per_cm", "source")
IMAGE_SUFFIXES = PLATE_SUFFIXES  # crops of X-ray plates: the formats open_plate reads
ACCEPTED_LABELS = ("h, horizontal, weft, H_thread (any label starting with 'h')",
                   "v, vertical, warp, V_thread (any label starting with 'v')")

Region = tuple[int, int, int, int]


# ---------------------------------------------------------------------------------------------
# masks → threads/cm
# ---------------------------------------------------------------------------------------------
def _as_mask(mask: Any, what: str = "mask") -> np.ndarray:
    """A 2-D bool array from a bool or 0/1 array; anything else raises InvalidParameterError."""
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise InvalidParameterError(f"{what} must be a 2-D (H, W) array, got shape {arr.shape}")
    if arr.dtype == bool:
        return arr
    if arr.dtype.kind in "uif" and arr.size and not np.isin(arr, (0, 1)).all():
        raise InvalidParameterError(f"{what} must be boolean (or 0/1), got values outside 0/1 ({arr.dtype})")
    if arr.dtype.kind not in "uifb":
        raise InvalidParameterError(f"{what} must be boolean, got dtype {arr.dtype}")
    return arr.astype(bool)


def _check_direction(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise InvalidParameterError(f"direction must be 'horizontal' or 'vertical', got {direction!r}")
    return direction


def _check_region(region: Sequence[int] | None, shape: tuple[int, int]) -> Region:
    h_img, w_img = shape
    if region is None:
        return 0, 0, h_img, w_img
    if len(region) != 4:
        raise InvalidParameterError(f"region must be (y0, x0, height, width) in px, got {tuple(region)}")
    try:
        y0, x0, h, w = (operator.index(v) for v in region)
    except TypeError as exc:
        raise InvalidParameterError(f"region must hold integers (px), got {tuple(region)}") from exc
    if h < 1 or w < 1 or y0 < 0 or x0 < 0 or y0 + h > h_img or x0 + w > w_img:
        raise InvalidParameterError(
            f"region (y0={y0}, x0={x0}, height={h}, width={w}) px does not lie inside the {h_img}x{w_img} mask"
        )
    return y0, x0, h, w


def _runs(lines: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of True along each row of ``lines`` (n, L): ``(line index, start, end)``, end exclusive."""
    n, length = lines.shape
    padded = np.zeros((n, length + 2), dtype=np.int8)
    padded[:, 1:-1] = lines
    step = np.diff(padded, axis=1)
    line_idx, start = np.nonzero(step == 1)  # row-major order: per line, in increasing position
    _, end = np.nonzero(step == -1)
    return line_idx, start, end


def mask_density(mask: Any, direction: str, px_per_cm: float, region: Sequence[int] | None = None) -> float:
    """Thread density (threads/cm) that a thread mask implies over the whole mask or a sub-crop.

    Definition (the training label of the thread-counting CNN):

    1. *Lines across the threads.* For ``direction="horizontal"`` (threads running left-right) the
       lines are the columns of the sub-crop; for ``"vertical"`` (threads running top-bottom) the
       rows. Along each line, every maximal run of True pixels is one thread.
    2. *Threads cut by the sub-crop's border.* A run fully inside the sub-crop counts 1. A run that
       the sub-crop's border cuts counts ``visible length / full run length``. The full run length
       is measured in the full ``mask`` (the run is followed beyond the sub-crop). When the run also
       reaches the end of the full mask's line, its true length is unknown and is taken as
       ``max(length seen in the full mask, L_ref)``, where ``L_ref`` is the median length of the
       *complete* runs of the full mask (those touching neither end of their line, over all lines).
       So with ``region=None`` a thread cut by the image edge counts the fraction of ``L_ref`` that
       is visible. If the mask has no complete run, cut runs count 1.
    3. *Per line.* The (fractional) count of a line divided by the sub-crop's length along the line
       in cm (``height / px_per_cm`` for horizontal threads, ``width / px_per_cm`` for vertical).
    4. *Density.* The median over the sub-crop's lines, ignoring lines that cross no run.

    Threads whose polygons touch merge into one run and under-count that line; stray fragments of a
    polygon over-count it; the median over lines absorbs both when they are local. The result is
    invariant under transposition: ``mask_density(m, "horizontal", p) == mask_density(m.T,
    "vertical", p)``.

    Args:
        mask: bool (or 0/1) array ``(H, W)`` marking the pixels of the threads of ``direction``.
        direction: ``"horizontal"`` or ``"vertical"``, in the sense of the display (see above).
        px_per_cm: resolution, px/cm.
        region: ``(y0, x0, height, width)`` in px, a sub-crop inside the mask; ``None`` = whole mask.

    Returns:
        Threads per cm; ``nan`` when no line of the sub-crop crosses a labelled thread.

    Raises:
        InvalidParameterError: not a 2-D bool mask, unknown direction, bad resolution or region.

    Example:
        >>> m = np.zeros((300, 300), bool)
        >>> for y in range(5, 300, 20):  # 15 horizontal threads, 10 px wide, every 20 px
        ...     m[y:y + 10] = True
        >>> mask_density(m, "horizontal", px_per_cm=200.0)
        10.0
        >>> round(mask_density(m, "horizontal", 200.0, region=(5, 0, 205, 300)), 4)  # 10.5 threads
        10.2439
    """
    m = _as_mask(mask)
    _check_direction(direction)
    if not (isinstance(px_per_cm, int | float | np.number) and math.isfinite(px_per_cm) and px_per_cm > 0):
        raise InvalidParameterError(f"px_per_cm must be a positive number, got {px_per_cm!r}")
    y0, x0, h, w = _check_region(region, m.shape)
    if direction == "horizontal":
        lines, (a0, a1), (b0, b1) = m.T, (y0, y0 + h), (x0, x0 + w)
    else:
        lines, (a0, a1), (b0, b1) = m, (x0, x0 + w), (y0, y0 + h)
    length = lines.shape[1]

    line_idx, start, end = _runs(lines)
    run_len = (end - start).astype(np.float64)
    open_run = (start == 0) | (end == length)  # cut by the full mask's own edge: true length unknown
    complete = run_len[~open_run]
    ref = float(np.median(complete)) if complete.size else math.nan

    keep = (line_idx >= b0) & (line_idx < b1) & (end > a0) & (start < a1)
    line_idx, start, end, run_len, open_run = (x[keep] for x in (line_idx, start, end, run_len, open_run))
    if line_idx.size == 0:
        return math.nan
    visible = np.minimum(end, a1) - np.maximum(start, a0)
    full = np.where(open_run, np.maximum(run_len, ref), run_len) if math.isfinite(ref) else run_len
    fraction = np.minimum(visible / full, 1.0)

    n_lines = b1 - b0
    counts = np.bincount(line_idx - b0, weights=fraction, minlength=n_lines)
    crossed = np.bincount(line_idx - b0, minlength=n_lines) > 0
    return float(np.median(counts[crossed]) / ((a1 - a0) / float(px_per_cm)))


def crossing_count(h_mask: Any, v_mask: Any) -> int:
    """Number of thread crossings: connected blobs (4-connectivity) of ``h_mask & v_mask``.

    DL4ART's training code uses this AND image as its label image; on a plain weave of ``n_h``
    horizontal and ``n_v`` vertical threads fully inside the crop it is ``n_h * n_v``.

    Example:
        >>> h = np.zeros((40, 40), bool); h[5:10] = True; h[25:30] = True
        >>> crossing_count(h, h.T)
        4
    """
    from scipy import ndimage

    h, v = _as_mask(h_mask, "h_mask"), _as_mask(v_mask, "v_mask")
    if h.shape != v.shape:
        raise InvalidImageError(f"h_mask {h.shape} and v_mask {v.shape} differ in shape")
    return int(ndimage.label(h & v)[1])


def mask_phase(mask: Any, direction: str, max_spacing_change: float = 0.4) -> np.ndarray:
    """Thread phase implied by a thread mask: the training target of the phase CNN.

    Along each line across the threads (columns for ``"horizontal"``, rows for ``"vertical"``) the
    centre of the ``k``-th run of True pixels gets phase ``k``; pixels between two centres are
    interpolated linearly. The phase increases down (horizontal threads) or to the right (vertical
    threads). Where it is not known it is NaN: before the first and after the last centre of a line,
    and on whole lines whose runs look wrong — a spacing between neighbouring centres that departs
    from the line's median spacing by more than ``max_spacing_change`` (merged polygons, a missed
    thread, stray fragments). Only ``cos`` and ``sin`` of ``2 pi phase`` are used, so the
    numbering's origin does not matter.

    Args:
        mask: bool (or 0/1) array ``(H, W)`` of the threads of ``direction``.
        direction: ``"horizontal"`` or ``"vertical"``.
        max_spacing_change: relative tolerance on the centre spacing along a line.

    Returns:
        float32 ``(H, W)`` phase in threads, NaN where unknown.

    Example:
        >>> m = np.zeros((60, 4), bool); m[5:10] = True; m[25:30] = True; m[45:50] = True
        >>> p = mask_phase(m, "horizontal")
        >>> float(p[7, 0]), float(p[17, 0]), float(p[47, 0]), bool(np.isnan(p[2, 0]))
        (0.0, 0.5, 2.0, True)
    """
    m = _as_mask(mask)
    _check_direction(direction)
    lines = m.T if direction == "horizontal" else m
    out = np.full(lines.shape, np.nan, dtype=np.float32)
    line_idx, start, end = _runs(lines)
    centres = (start + end - 1) / 2.0
    bounds = np.searchsorted(line_idx, np.arange(lines.shape[0] + 1))
    positions = np.arange(lines.shape[1], dtype=np.float64)
    for i in range(lines.shape[0]):
        c = centres[bounds[i]: bounds[i + 1]]
        if c.size < 2:
            continue
        spacing = np.diff(c)
        if np.any(np.abs(spacing / np.median(spacing) - 1.0) > max_spacing_change):
            continue
        inside = (positions >= c[0]) & (positions <= c[-1])
        out[i, inside] = np.interp(positions[inside], c, np.arange(c.size, dtype=np.float64))
    return out.T if direction == "horizontal" else out


# ---------------------------------------------------------------------------------------------
# labelled crops
# ---------------------------------------------------------------------------------------------
@dataclass
class LabelledCrop:
    """An X-ray crop with one thread mask per direction.

    Attributes:
        name: crop name (file stem), unique within a dataset.
        image_path: the image file.
        px_per_cm: resolution, px/cm.
        h_mask: bool ``(H, W)``, pixels of horizontal threads (running left-right).
        v_mask: bool ``(H, W)``, pixels of vertical threads (running top-bottom).
        plate: the X-ray plate the crop was cut from (splits are made by plate), or ``None``.
        source: where the labels came from, ``"labelme:<file>"`` or ``"dl4art:<file>"``.
    """

    name: str
    image_path: Path
    px_per_cm: float
    h_mask: np.ndarray
    v_mask: np.ndarray
    plate: str | None = None
    source: str = ""

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.h_mask.shape)  # type: ignore[return-value]

    def density(self, region: Sequence[int] | None = None) -> dict[str, float]:
        """``{"horizontal": ..., "vertical": ...}`` threads/cm by :func:`mask_density` over
        ``region`` = ``(y0, x0, height, width)`` px (``None`` = the whole crop)."""
        return {
            "horizontal": mask_density(self.h_mask, "horizontal", self.px_per_cm, region),
            "vertical": mask_density(self.v_mask, "vertical", self.px_per_cm, region),
        }

    def crossings(self) -> int:
        """Number of H & V crossing blobs (:func:`crossing_count`)."""
        return crossing_count(self.h_mask, self.v_mask)

    def read_image(self) -> np.ndarray:
        """The image as float32 grayscale (H, W) in the file's own range."""
        from artlens.io import open_plate

        with open_plate(self.image_path, px_per_cm=self.px_per_cm) as plate:
            return plate.read()


def direction_of_label(label: Any) -> str:
    """``"horizontal"`` or ``"vertical"`` for a labelme shape label (case-insensitive).

    Labels starting with ``h`` (``h``, ``H``, ``horizontal``, ``H_thread``, ``h12``) or equal to
    ``weft`` are horizontal; labels starting with ``v`` or equal to ``warp`` are vertical. (Which of
    warp and weft runs horizontally depends on how the canvas was mounted; ``weft`` / ``warp`` follow
    the DL4ART convention. Name directions by ``h`` / ``v`` when in doubt.)

    Raises:
        UnreadableInputError: any other label, naming it and the accepted ones.
    """
    text = str(label).strip().lower() if label is not None else ""
    if text == "weft" or text.startswith("h"):
        return "horizontal"
    if text == "warp" or text.startswith("v"):
        return "vertical"
    raise UnreadableInputError(
        f"unknown thread label {label!r}; accepted: {ACCEPTED_LABELS[0]} for horizontal threads, "
        f"{ACCEPTED_LABELS[1]} for vertical threads"
    )


def _image_meta(path: Path, px_per_cm: float | None) -> tuple[tuple[int, int], float]:
    from artlens.io import open_plate

    with open_plate(path, px_per_cm=px_per_cm, require_resolution=True) as plate:
        return plate.shape, float(plate.px_per_cm)  # type: ignore[arg-type]


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InputNotFoundError(f"{path}: no such file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnreadableInputError(f"{path.name}: malformed JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise UnreadableInputError(f"{path.name}: not a labelme file (top level is not a JSON object)")
    return data


def _resolve_labelme_image(json_path: Path, image_path: Any) -> Path:
    """``imagePath`` relative to the JSON; else its base name beside the JSON (labelme files moved
    between machines keep absolute or Windows paths)."""
    if not isinstance(image_path, str) or not image_path.strip():
        raise UnreadableInputError(f"{json_path.name}: no 'imagePath' (not a labelme file?)")
    candidates = [json_path.parent / image_path]
    base = image_path.replace("\\", "/").rsplit("/", 1)[-1]
    candidates.append(json_path.parent / base)
    for c in candidates:
        if c.is_file():
            return c
    raise InputNotFoundError(
        f"{json_path.name}: image {image_path!r} not found (looked for {candidates[0]} and {candidates[1]})"
    )


def _polygon_mask(points: Any, shape_type: str, shape: tuple[int, int], where: str) -> np.ndarray:
    from PIL import Image, ImageDraw

    try:
        pts = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise UnreadableInputError(f"{where}: points are not a list of [x, y] pairs") from exc
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise UnreadableInputError(f"{where}: points are not a list of [x, y] pairs")
    if not np.isfinite(pts).all():
        raise UnreadableInputError(f"{where}: points contain NaN or infinite coordinates")
    h, w = shape
    canvas = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    xy = [(float(x), float(y)) for x, y in pts]
    if shape_type == "rectangle":
        if len(xy) != 2:
            raise UnreadableInputError(f"{where}: a rectangle needs 2 points, got {len(xy)}")
        (xa, ya), (xb, yb) = xy
        draw.rectangle([min(xa, xb), min(ya, yb), max(xa, xb), max(ya, yb)], outline=1, fill=1)
    else:
        if len(xy) < 3:
            raise UnreadableInputError(f"{where}: a polygon needs at least 3 points, got {len(xy)}")
        draw.polygon(xy, outline=1, fill=1)  # as labelme's own shape_to_mask
    return np.asarray(canvas, dtype=bool)


def load_labelme(json_path: str | os.PathLike[str], px_per_cm: float | None = None) -> LabelledCrop:
    """Read a labelme JSON whose polygons outline threads, into a :class:`LabelledCrop`.

    Each shape's ``label`` names its direction (:func:`direction_of_label`); ``polygon`` shapes (3 or
    more points, also when ``shape_type`` is absent) and ``rectangle`` shapes are rasterised with
    PIL's ``ImageDraw`` (fill and outline) and OR-ed into the direction's mask. The image is
    ``imagePath`` resolved relative to the JSON (or its base name beside the JSON); its size must be
    ``imageHeight`` x ``imageWidth``. The plate is the JSON's ``plate`` key or ``flags["plate"]``
    when it is a string.

    Args:
        json_path: the labelme file.
        px_per_cm: resolution override; default the image's TIFF/PNG resolution tags.

    Raises:
        InputNotFoundError: the JSON or its image is missing.
        UnreadableInputError: malformed JSON, no shapes, a shape with too few points, an unknown label.
        InvalidImageError: ``imageHeight``/``imageWidth`` differ from the image's size.
        MissingResolutionError: the image has no resolution and none is given.
    """
    path = Path(json_path)
    data = _read_json(path)
    shapes = data.get("shapes")
    if not isinstance(shapes, list) or not shapes:
        raise UnreadableInputError(f"{path.name}: no 'shapes' (a labelme file with at least one thread polygon)")
    image = _resolve_labelme_image(path, data.get("imagePath"))
    shape, ppc = _image_meta(image, px_per_cm)
    jh, jw = data.get("imageHeight"), data.get("imageWidth")
    if jh is not None and jw is not None and (jh, jw) != shape:
        raise InvalidImageError(
            f"{path.name}: imageHeight x imageWidth = {jh}x{jw} but {image.name} is {shape[0]}x{shape[1]} px"
        )
    masks = {d: np.zeros(shape, dtype=bool) for d in DIRECTIONS}
    for i, s in enumerate(shapes):
        where = f"{path.name}: shape {i}"
        if not isinstance(s, dict):
            raise UnreadableInputError(f"{where} is not a JSON object")
        where += f" ({s.get('label')!r})"
        shape_type = s.get("shape_type") or "polygon"
        if shape_type not in ("polygon", "rectangle"):
            raise UnreadableInputError(f"{where}: shape_type {shape_type!r} is not an area; use polygon or rectangle")
        direction = direction_of_label(s.get("label"))
        masks[direction] |= _polygon_mask(s.get("points"), shape_type, shape, where)
    plate = data.get("plate")
    flags = data.get("flags")
    if not isinstance(plate, str) and isinstance(flags, dict) and isinstance(flags.get("plate"), str):
        plate = flags["plate"]
    return LabelledCrop(name=path.stem, image_path=image, px_per_cm=ppc, h_mask=masks["horizontal"],
                        v_mask=masks["vertical"], plate=plate if isinstance(plate, str) and plate else None,
                        source=f"labelme:{path.name}")


def read_npz_mask(path: str | os.PathLike[str]) -> np.ndarray:
    """The bool ``(H, W)`` mask stored under ``arr_0`` in a DL4ART npz file."""
    p = Path(path)
    if not p.is_file():
        raise InputNotFoundError(f"{p}: no such file")
    try:
        with np.load(p, allow_pickle=False) as npz:
            if "arr_0" not in npz.files:
                raise UnreadableInputError(f"{p.name}: no array 'arr_0' (found {', '.join(npz.files) or 'none'})")
            arr = npz["arr_0"]
    except UnreadableInputError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise UnreadableInputError(f"{p.name}: not a readable npz file ({exc})") from exc
    if arr.ndim != 2 or arr.dtype.kind not in "biuf":
        raise UnreadableInputError(f"{p.name}: arr_0 is not a 2-D mask (shape {arr.shape}, dtype {arr.dtype})")
    return arr.astype(bool) if arr.dtype != bool else arr


def _find_image(folder: Path, stem: str) -> Path | None:
    for suffix in IMAGE_SUFFIXES:
        for s in (suffix, suffix.upper()):
            c = folder / f"{stem}{s}"
            if c.is_file():
                return c
    return None


def load_dl4art_masks(image_path: str | os.PathLike[str], px_per_cm: float | None = None) -> LabelledCrop:
    """Read a DL4ART crop: the image and ``<stem>_H.npz`` / ``<stem>_V.npz`` beside it.

    Args:
        image_path: the crop image (``Crop0139.tif``).
        px_per_cm: resolution override; default the image's resolution tags.

    Raises:
        InputNotFoundError: the image or a mask file is missing.
        UnreadableInputError: a mask file is not an npz with a 2-D ``arr_0``.
        InvalidImageError: a mask's shape differs from the image's.
    """
    image = Path(image_path)
    if not image.is_file():
        raise InputNotFoundError(f"{image}: no such file")
    shape, ppc = _image_meta(image, px_per_cm)
    masks = {}
    for key in ("H", "V"):
        mp = image.with_name(f"{image.stem}_{key}.npz")
        if not mp.is_file():
            raise InputNotFoundError(f"{image.name}: mask {mp.name} not found beside the image")
        m = read_npz_mask(mp)
        if m.shape != shape:
            raise InvalidImageError(
                f"{mp.name} is {m.shape[0]}x{m.shape[1]} but {image.name} is {shape[0]}x{shape[1]} px"
            )
        masks[key] = m
    return LabelledCrop(name=image.stem, image_path=image, px_per_cm=ppc, h_mask=masks["H"], v_mask=masks["V"],
                        source=f"dl4art:{image.stem}_H.npz")


# ---------------------------------------------------------------------------------------------
# datasets
# ---------------------------------------------------------------------------------------------
def _plate_table(src: Path) -> dict[str, str]:
    """name → plate from ``plates.csv`` (columns name, plate) or, failing that, the ``samples.csv``
    written by :func:`artlens.canvas.threads.sampling.sample_plate`."""
    for fname in ("plates.csv", "samples.csv"):
        p = src / fname
        if not p.is_file():
            continue
        try:
            with open(p, newline="", encoding="utf-8") as fh:
                rows = list(csv.DictReader(fh))
        except (UnicodeDecodeError, csv.Error) as exc:
            raise UnreadableInputError(f"{p.name}: not a readable CSV ({exc})") from exc
        if rows and not {"name", "plate"} <= set(rows[0]):
            raise UnreadableInputError(f"{p.name}: needs columns 'name' and 'plate', has {', '.join(rows[0])}")
        return {r["name"].strip(): r["plate"].strip() for r in rows if r.get("name") and r.get("plate")}
    return {}


def plate_of(name: str, table: dict[str, str] | None = None, declared: str | None = None) -> str:
    """The plate of a crop: ``table[name]`` (plates.csv), else ``declared`` (labelme JSON), else the
    name's prefix before its last ``_`` (``PlateA_007`` → ``PlateA``), else the name itself."""
    if table and name in table:
        return table[name]
    if declared:
        return declared
    prefix = name.rpartition("_")[0]
    return prefix or name


def _discover(src: Path, px_per_cm: float | None) -> list[LabelledCrop]:
    """Every labelled crop under ``src`` (recursively): labelme JSONs and DL4ART npz pairs."""
    crops: dict[str, LabelledCrop] = {}
    origin: dict[str, Path] = {}

    def add(crop: LabelledCrop, from_path: Path) -> None:
        if crop.name in crops:
            if crops[crop.name].source.startswith("labelme:") and crop.source.startswith("dl4art:") \
                    and origin[crop.name].parent == from_path.parent:
                warnings.warn(f"{crop.name}: both a labelme JSON and DL4ART masks found; using the JSON",
                              UserWarning, stacklevel=3)
                return
            raise InvalidParameterError(
                f"two crops named {crop.name!r} ({origin[crop.name]} and {from_path}); crop names must be unique"
            )
        crops[crop.name], origin[crop.name] = crop, from_path

    for jp in sorted(src.rglob("*.json")):
        crop = load_labelme(jp, px_per_cm)
        crop.source = f"labelme:{jp.relative_to(src).as_posix()}"
        add(crop, jp)
    for hp in sorted(src.rglob("*_H.npz")):
        stem = hp.name[: -len("_H.npz")]
        image = _find_image(hp.parent, stem)
        if image is None:
            raise InputNotFoundError(f"{hp.name}: no image {stem}.tif (or .png/.jpg/.bmp) beside it")
        crop = load_dl4art_masks(image, px_per_cm)
        crop.source = f"dl4art:{hp.relative_to(src).as_posix()}"
        add(crop, hp)
    for vp in sorted(src.rglob("*_V.npz")):
        if not vp.with_name(vp.name[: -len("_V.npz")] + "_H.npz").is_file():
            raise InputNotFoundError(f"{vp.name}: its horizontal-thread mask {vp.name[:-6]}_H.npz is missing")
    return list(crops.values())


def _write_image(crop: LabelledCrop, dest: Path) -> None:
    """Copy a TIFF's bytes; convert other formats to an 8-bit gray TIFF with resolution tags."""
    from artlens.io import open_plate
    from artlens.io.image import _sniff

    if _sniff(crop.image_path) == "tiff":
        shutil.copyfile(crop.image_path, dest)
        return
    import tifffile

    with open_plate(crop.image_path, px_per_cm=crop.px_per_cm) as plate:
        gray = plate.read()
        dtype = np.dtype(plate.info.dtype)
    tifffile.imwrite(dest, to_uint8(gray, dtype), photometric="minisblack",
                     resolution=(crop.px_per_cm, crop.px_per_cm), resolutionunit="CENTIMETER", metadata=None)


def to_uint8(gray: np.ndarray, dtype: np.dtype, value_range: tuple[float, float] | None = None) -> np.ndarray:
    """8-bit version of grayscale pixels stored as ``dtype``, by one linear map (no equalisation).

    8-bit data are kept as they are; other data map ``value_range`` (default: the integer dtype's
    full range, or the array's min..max for floats) onto 0..255.
    """
    if dtype == np.uint8 and value_range is None:
        return np.clip(np.rint(gray), 0, 255).astype(np.uint8)
    if value_range is None:
        if dtype.kind in "ui":
            info = np.iinfo(dtype)
            value_range = (float(info.min), float(info.max))
        else:
            value_range = (float(np.min(gray)), float(np.max(gray)))
    lo, hi = value_range
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    return np.clip(np.rint((gray.astype(np.float64) - lo) * scale), 0, 255).astype(np.uint8)


def _fmt(x: float) -> str:
    return "" if not math.isfinite(x) else f"{x:.4f}"


def import_labels(src_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str],
                  px_per_cm: float | None = None) -> list[dict[str, Any]]:
    """Convert a folder of labelled crops into a dataset folder.

    ``src_dir`` is searched recursively for labelme JSON files (:func:`load_labelme`) and DL4ART
    ``<stem>_H.npz`` / ``<stem>_V.npz`` pairs with the image ``<stem>.tif`` (or .png/.jpg/.bmp)
    beside them (:func:`load_dl4art_masks`). Every crop is loaded and checked before anything is
    written. ``out_dir`` receives:

    - ``images/<name>.tif``: the source bytes when the source is a TIFF, else an 8-bit gray TIFF with
      resolution tags in px/cm; sources are never modified;
    - ``masks/<name>_H.npz``, ``masks/<name>_V.npz``: bool masks under key ``arr_0`` (DL4ART format);
    - ``labels.csv``: columns ``name, image, plate, px_per_cm, height_px, width_px, h_threads_per_cm,
      v_threads_per_cm, source``; densities of the whole crop by :func:`mask_density` (empty when a
      direction has no labelled thread). Densities of sub-crops come from the masks at training time
      (:meth:`LabelledCrop.density`).

    The ``plate`` of a crop (datasets are split by plate) comes from ``plates.csv`` in ``src_dir``
    (columns ``name, plate``; a ``samples.csv`` written by ``artlens threads sample`` also serves),
    else the labelme JSON's ``plate`` / ``flags["plate"]``, else :func:`plate_of`.

    Args:
        src_dir: folder of labelled crops.
        out_dir: dataset folder (created; files of the same names are replaced).
        px_per_cm: resolution override for every crop; default each image's resolution tags.

    Returns:
        The rows written to ``labels.csv`` (dicts with the columns above, numbers as numbers).

    Raises:
        InputNotFoundError: ``src_dir`` missing or without labelled crops, or a missing image/mask.
        UnreadableInputError, InvalidImageError, MissingResolutionError: see :func:`load_labelme`.
        InvalidParameterError: duplicate crop names, or ``out_dir`` equal to ``src_dir``.
    """
    src, out = Path(src_dir), Path(out_dir)
    if not src.is_dir():
        raise InputNotFoundError(f"{src}: no such folder")
    if out.resolve() == src.resolve():
        raise InvalidParameterError("the dataset folder must differ from the source folder")
    table = _plate_table(src)
    crops = _discover(src, px_per_cm)
    if not crops:
        raise InputNotFoundError(f"{src}: no labelme JSON or DL4ART <name>_H.npz/<name>_V.npz pairs found")
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for crop in sorted(crops, key=lambda c: c.name):
        crop.plate = plate_of(crop.name, table, crop.plate)
        image_rel = f"images/{crop.name}.tif"
        _write_image(crop, out / image_rel)
        np.savez_compressed(out / "masks" / f"{crop.name}_H.npz", crop.h_mask)
        np.savez_compressed(out / "masks" / f"{crop.name}_V.npz", crop.v_mask)
        d = crop.density()
        rows.append({
            "name": crop.name, "image": image_rel, "plate": crop.plate, "px_per_cm": crop.px_per_cm,
            "height_px": crop.shape[0], "width_px": crop.shape[1],
            "h_threads_per_cm": d["horizontal"], "v_threads_per_cm": d["vertical"], "source": crop.source,
        })
    tmp = out / "labels.csv.tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=LABEL_COLUMNS)
        writer.writeheader()
        for r in rows:
            writer.writerow({**r, "px_per_cm": f"{r['px_per_cm']:g}", "h_threads_per_cm": _fmt(r["h_threads_per_cm"]),
                             "v_threads_per_cm": _fmt(r["v_threads_per_cm"])})
    os.replace(tmp, out / "labels.csv")
    return rows


def load_labelled_crops(dataset_dir: str | os.PathLike[str]) -> list[LabelledCrop]:
    """Read a dataset folder written by :func:`import_labels` (``labels.csv``, ``images/``, ``masks/``).

    Raises:
        InputNotFoundError: no ``labels.csv``, or a listed image or mask is missing.
        UnreadableInputError: ``labels.csv`` lacks columns or has unreadable values.
        InvalidImageError: a mask's shape differs from ``height_px`` x ``width_px``.
    """
    root = Path(dataset_dir)
    table = root / "labels.csv"
    if not table.is_file():
        raise InputNotFoundError(f"{root}: no labels.csv (make one with `artlens threads import-labels`)")
    with open(table, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = set(LABEL_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise UnreadableInputError(f"{table}: missing column(s) {', '.join(sorted(missing))}")
        rows = list(reader)
    crops = []
    for r in rows:
        try:
            ppc, shape = float(r["px_per_cm"]), (int(r["height_px"]), int(r["width_px"]))
        except ValueError as exc:
            raise UnreadableInputError(f"{table.name}: row {r['name']!r} has a non-numeric value ({exc})") from exc
        image = root / r["image"]
        if not image.is_file():
            raise InputNotFoundError(f"{image}: no such file (listed in {table.name})")
        masks = []
        for key in ("H", "V"):
            m = read_npz_mask(root / "masks" / f"{r['name']}_{key}.npz")
            if m.shape != shape:
                raise InvalidImageError(f"{r['name']}_{key}.npz is {m.shape[0]}x{m.shape[1]}, "
                                        f"labels.csv says {shape[0]}x{shape[1]} px")
            masks.append(m)
        crops.append(LabelledCrop(name=r["name"], image_path=image, px_per_cm=ppc, h_mask=masks[0],
                                  v_mask=masks[1], plate=r["plate"] or None, source=r["source"]))
    return crops
