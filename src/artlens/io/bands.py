"""Band stacks: visible RGB, multispectral bands, infrared and X-ray images of one painting.

A :class:`Band` is one grey image scaled to ``[0, 1]`` from its file's bit depth, with its modality
(``"rgb-r"``, ``"rgb-g"``, ``"rgb-b"``, ``"band"``, ``"ir"``, ``"xray"``, ``"gray"``) and, where known,
its wavelength. A :class:`BandStack` holds ordered bands on one pixel grid. :func:`open_modality`
opens one file (an 8-bit RGB file becomes a three-band stack, a grey file one band);
:func:`load_cave_scene` reads a CAVE-style multispectral scene (``*_RGB.bmp`` plus
``*_ms_NN.png`` bands, band ``NN`` at ``390 + 10 NN`` nm).

Files are opened read-only with the same one-line errors as :func:`artlens.io.open_plate`. Notices
(conversions, resampling) are issued with :func:`warnings.warn`; the CLI prints them as ``notice:``
lines. Every band also keeps its own list of ``notes`` so that a result can say what was done to it.

References:
    Yasuma, F., Mitsunaga, T., Iso, D. and Nayar, S. K. (2008). Generalized Assorted Pixel Camera:
    Post-Capture Control of Resolution, Dynamic Range and Spectrum. Technical Report CUCS-061-08,
    Columbia University (the CAVE multispectral image database).
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from artlens.errors import InputNotFoundError, InvalidImageError, InvalidParameterError, UnreadableInputError
from artlens.io.image import _sniff

MODALITIES = ("rgb-r", "rgb-g", "rgb-b", "band", "ir", "xray", "gray")
"""Modalities of a single :class:`Band`. ``"rgb"`` names a whole colour file in :func:`open_modality`."""

SINGLE_BAND_MODALITIES = ("band", "ir", "xray", "gray")
"""Modalities that expect one grey band per file."""

LUMA_WEIGHTS = (0.299, 0.587, 0.114)
"""ITU-R BT.601 luma weights used to turn RGB into one band (as :func:`artlens.io.open_plate`)."""

CAVE_FIRST_NM = 390.0
CAVE_STEP_NM = 10.0
_CAVE_BAND = re.compile(r"_ms_(\d{1,3})\.png$", re.IGNORECASE)
_WAVELENGTH_TOL_NM = 0.5


@dataclass
class Band:
    """One grey image of a painting on its own pixel grid.

    Attributes:
        data: ``(H, W)`` ``float32`` in ``[0, 1]``: file samples divided by ``2**bit_depth - 1``.
        modality: one of :data:`MODALITIES`.
        wavelength_nm: centre wavelength (nm) for narrow bands, ``None`` when not known.
        source: path of the file it came from ("" when computed).
        bit_depth: bits per sample in the file (8, 16; 32 for float files).
        notes: what was done to the band (conversions, resampling), in order.

    Raises:
        InvalidParameterError: unknown modality or non-positive wavelength.
        InvalidImageError: data not 2-D or not finite.
    """

    data: np.ndarray
    modality: str = "gray"
    wavelength_nm: float | None = None
    source: str = ""
    bit_depth: int = 8
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise InvalidParameterError(
                f"unknown modality {self.modality!r}; expected one of {', '.join(MODALITIES)}"
            )
        if self.wavelength_nm is not None:
            if not (np.isfinite(self.wavelength_nm) and self.wavelength_nm > 0):
                raise InvalidParameterError(f"wavelength must be a positive number of nm, got {self.wavelength_nm}")
            self.wavelength_nm = float(self.wavelength_nm)
        data = np.asarray(self.data)
        if data.ndim != 2:
            raise InvalidImageError(f"a band must be a 2-D (H, W) image, got shape {data.shape}")
        data = data.astype(np.float32, copy=False)
        if not np.isfinite(data).all():
            raise InvalidImageError(f"{self.label} contains NaN or infinite values")
        self.data = data

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)`` in pixels."""
        return int(self.data.shape[0]), int(self.data.shape[1])

    @property
    def name(self) -> str:
        """``"550nm"`` for a narrow band, ``"ir@1000nm"`` for another modality with a wavelength,
        else the modality (``"rgb-r"``, ``"ir"``, ``"xray"``...)."""
        if self.wavelength_nm is None:
            return self.modality
        nm = f"{self.wavelength_nm:g}nm"
        return nm if self.modality == "band" else f"{self.modality}@{nm}"

    @property
    def label(self) -> str:
        src = Path(self.source).name if self.source else ""
        return f"{src} ({self.name})" if src else self.name

    def resample(self, shape: tuple[int, int]) -> Band:
        """This band on a ``(H, W)`` grid (bilinear; Gaussian anti-aliasing when shrinking).

        Returns the band itself when the shape already matches; otherwise a new band with a note.
        """
        shape = _check_shape(shape)
        if shape == self.shape:
            return self
        from skimage.transform import resize

        data = resize(self.data, shape, order=1, mode="edge", anti_aliasing=True, preserve_range=True)
        note = (f"resampled from {self.shape[1]}x{self.shape[0]} to {shape[1]}x{shape[0]} (W x H; bilinear, "
                "anti-aliased)")
        return Band(np.clip(data, 0.0, 1.0).astype(np.float32), self.modality, self.wavelength_nm, self.source,
                    self.bit_depth, [*self.notes, note])


class BandStack:
    """Ordered bands on one pixel grid.

    Args:
        bands: bands of identical ``(H, W)``; use :meth:`on_grid` to bring differing ones together.
        notes: notes about the stack as a whole.

    Raises:
        InvalidParameterError: no bands, or duplicate band names.
        InvalidImageError: bands of different shapes.

    Example:
        >>> stack = BandStack([Band(np.zeros((4, 4)), "band", 550.0), Band(np.ones((4, 4)), "ir", 950.0)])
        >>> stack.names, stack.as_array().shape
        (['550nm', 'ir@950nm'], (2, 4, 4))
    """

    def __init__(self, bands: Sequence[Band], *, notes: Sequence[str] = ()):
        bands = list(bands)
        if not bands:
            raise InvalidParameterError("a band stack needs at least one band")
        shapes = {b.shape for b in bands}
        if len(shapes) > 1:
            listing = ", ".join(f"{b.name} {b.shape[1]}x{b.shape[0]}" for b in bands)
            raise InvalidImageError(
                f"bands differ in size ({listing}); bring them to one grid with BandStack.on_grid(...) "
                "or register them first"
            )
        names = [b.name for b in bands]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise InvalidParameterError(f"duplicate band names in a stack: {', '.join(dupes)}")
        self.bands: list[Band] = bands
        self.notes: list[str] = list(notes)

    @classmethod
    def on_grid(cls, bands: Sequence[Band], shape: tuple[int, int] | None = None) -> BandStack:
        """Stack bands after resampling those whose shape differs to ``shape`` (default: the first
        band's shape). Resampling assumes the bands cover the same field of view; images of different
        views need :func:`artlens.beneath.registration.register` instead."""
        bands = list(bands)
        if not bands:
            raise InvalidParameterError("a band stack needs at least one band")
        target = _check_shape(shape) if shape is not None else bands[0].shape
        return cls([b.resample(target) for b in bands])

    # -- access -----------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)`` shared by all bands."""
        return self.bands[0].shape

    @property
    def names(self) -> list[str]:
        return [b.name for b in self.bands]

    @property
    def wavelengths(self) -> np.ndarray:
        """``(C,)`` wavelengths in nm, NaN for bands without one."""
        return np.array([np.nan if b.wavelength_nm is None else b.wavelength_nm for b in self.bands])

    @property
    def modalities(self) -> list[str]:
        return [b.modality for b in self.bands]

    def as_array(self) -> np.ndarray:
        """``(C, H, W)`` ``float32`` array of the bands, in order."""
        return np.stack([b.data for b in self.bands], axis=0)

    def __len__(self) -> int:
        return len(self.bands)

    def __iter__(self) -> Iterator[Band]:
        return iter(self.bands)

    def __getitem__(self, index: int) -> Band:
        return self.bands[index]

    def select(self, key: float | str) -> Band:
        """The band with this name (``"550nm"``, ``"rgb-r"``, ``"ir"``) or this wavelength (nm, within
        0.5 nm).

        Raises:
            InvalidParameterError: no such band; the message lists the available ones.
        """
        if isinstance(key, str):
            for b in self.bands:
                if b.name == key:
                    return b
            stripped = key.lower().removesuffix("nm").strip()
            try:
                key = float(stripped)
            except ValueError:
                raise InvalidParameterError(f"no band {key!r}; available: {', '.join(self.names)}") from None
        wl = self.wavelengths
        hits = np.flatnonzero(np.abs(wl - float(key)) <= _WAVELENGTH_TOL_NM)
        if hits.size == 0:
            raise InvalidParameterError(f"no band at {float(key):g} nm; available: {', '.join(self.names)}")
        return self.bands[int(hits[0])]

    def nearest(self, nm: float) -> Band:
        """The band whose wavelength is nearest to ``nm`` (nm).

        Raises:
            InvalidParameterError: no band carries a wavelength.
        """
        wl = self.wavelengths
        if np.isnan(wl).all():
            raise InvalidParameterError(f"no band has a wavelength (bands: {', '.join(self.names)})")
        return self.bands[int(np.nanargmin(np.abs(wl - float(nm))))]

    def resample(self, shape: tuple[int, int]) -> BandStack:
        """All bands on a ``(H, W)`` grid (:meth:`Band.resample`: bilinear, anti-aliased), with a note."""
        shape = _check_shape(shape)
        if shape == self.shape:
            return self
        note = f"resampled from {self.shape[1]}x{self.shape[0]} to {shape[1]}x{shape[0]} (W x H)"
        return BandStack([b.resample(shape) for b in self.bands], notes=[*self.notes, note])

    def __repr__(self) -> str:
        return f"BandStack({len(self)} bands {self.names}, shape={self.shape})"


def _check_shape(shape: Sequence[int]) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in shape)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"shape must be (height, width), got {shape!r}") from None
    if h < 2 or w < 2:
        raise InvalidParameterError(f"shape must be at least 2x2 pixels, got {h}x{w}")
    return h, w


# -- reading files ----------------------------------------------------------------------------------
def _check_file(path: str | os.PathLike[str]) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise InputNotFoundError(f"{p}: no such file")
    if p.is_dir():
        raise UnreadableInputError(f"{p} is a directory, not an image file")
    if p.stat().st_size == 0:
        raise UnreadableInputError(f"{p.name} is empty (0 bytes)")
    return p


def _read_samples(p: Path) -> np.ndarray:
    """Decode a file to its samples: ``(H, W)`` or ``(H, W, C)`` in the file's own dtype."""
    kind = _sniff(p)
    if kind == "tiff":
        import tifffile

        try:
            arr = np.asarray(tifffile.imread(p, key=0))
        except Exception as exc:
            raise UnreadableInputError(f"{p.name}: corrupt or truncated TIFF ({exc})") from exc
        if arr.ndim == 3 and arr.shape[0] in (3, 4) and arr.shape[2] > 4:
            arr = np.moveaxis(arr, 0, -1)  # planar (C, H, W) -> (H, W, C)
        return arr
    if kind in ("png", "jpeg", "bmp"):
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(p) as im:
                im.load()
                mode = im.mode
                if mode in ("I;16", "I;16B", "I;16L"):
                    return np.asarray(im, dtype=np.uint16)
                if mode in ("1", "L", "LA", "La"):
                    return np.asarray(im.convert("L"))
                if mode == "I":  # 16-bit grey decoded as 32-bit int by some Pillow versions
                    arr = np.asarray(im)
                    return arr.astype(np.uint16) if arr.size and arr.min() >= 0 and arr.max() <= 65535 else arr
                if mode == "F":
                    return np.asarray(im)
                return np.asarray(im.convert("RGB"))
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise UnreadableInputError(f"{p.name}: corrupt or truncated {kind.upper()} ({exc})") from exc
    raise UnreadableInputError(f"{p.name}: unsupported or unrecognised format (expected TIFF, PNG, JPEG or BMP)")


def _scale(arr: np.ndarray, name: str) -> tuple[np.ndarray, int, list[str]]:
    """Samples → ``float32`` in ``[0, 1]``, the bit depth used, and notes."""
    notes: list[str] = []
    if arr.dtype == np.bool_:
        return arr.astype(np.float32), 1, notes
    if arr.dtype.kind == "u":
        bits = arr.dtype.itemsize * 8
        return (arr.astype(np.float64) / (2.0**bits - 1)).astype(np.float32), bits, notes
    if arr.dtype.kind == "i":
        lo, hi = float(arr.min()), float(arr.max())
        if lo >= 0 and hi <= 65535:
            bits = 8 if hi <= 255 and arr.dtype.itemsize == 1 else 16
            return (arr.astype(np.float64) / (2.0**bits - 1)).astype(np.float32), bits, notes
        notes.append(f"signed samples {lo:g}..{hi:g} stretched to [0, 1]")
        return _stretch(arr), arr.dtype.itemsize * 8, notes
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise InvalidImageError(f"{name} contains NaN or infinite pixel values")
        lo, hi = float(arr.min()), float(arr.max())
        if lo >= 0.0 and hi <= 1.0:
            return arr.astype(np.float32), 32, notes
        notes.append(f"float samples {lo:g}..{hi:g} stretched to [0, 1]")
        return _stretch(arr), 32, notes
    raise UnreadableInputError(f"{name}: unsupported sample type {arr.dtype}")


def _stretch(arr: np.ndarray) -> np.ndarray:
    a = arr.astype(np.float64)
    lo, hi = a.min(), a.max()
    return ((a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)).astype(np.float32)


def to_single_band(image: Band | BandStack | np.ndarray, *, modality: str = "gray",
                   wavelength_nm: float | None = None, source: str = "", notice: bool = True) -> Band:
    """One grey band from a colour image: ITU-R BT.601 luminance of its R, G, B bands.

    Args:
        image: a :class:`Band` (returned with the new modality), a stack with ``rgb-r/g/b`` bands (or
            exactly three bands taken as R, G, B), or an ``(H, W, 3)`` array in ``[0, 1]``.
        modality: modality of the result (one of :data:`SINGLE_BAND_MODALITIES`).
        wavelength_nm: wavelength of the result (nm), if any.
        source: source path recorded in the result (default: that of the input).
        notice: issue a notice that colour was converted.

    Returns:
        A :class:`Band` with a note saying how it was made.

    Raises:
        InvalidParameterError: an input that is not colour, or an unknown modality.
    """
    if modality not in SINGLE_BAND_MODALITIES:
        raise InvalidParameterError(
            f"modality {modality!r} is not a single-band modality ({', '.join(SINGLE_BAND_MODALITIES)})"
        )
    if isinstance(image, Band):
        nm = image.wavelength_nm if wavelength_nm is None else wavelength_nm
        return Band(image.data, modality, nm, source or image.source, image.bit_depth, list(image.notes))
    if isinstance(image, BandStack):
        mods = image.modalities
        if all(m in mods for m in ("rgb-r", "rgb-g", "rgb-b")):
            chans = [image.select(m) for m in ("rgb-r", "rgb-g", "rgb-b")]
        elif len(image) == 3:
            chans = list(image.bands)
        else:
            raise InvalidParameterError(f"cannot make one band from a stack of {len(image)} bands {image.names}")
        rgb = np.stack([c.data for c in chans], axis=-1)
        source = source or chans[0].source
        bit_depth, notes = chans[0].bit_depth, list(chans[0].notes)
    else:
        rgb = np.asarray(image, dtype=np.float32)
        if rgb.ndim != 3 or rgb.shape[2] not in (3, 4):
            raise InvalidParameterError(f"expected an (H, W, 3) colour array, got shape {rgb.shape}")
        rgb, bit_depth, notes = rgb[..., :3], 32, []
    luma = rgb @ np.asarray(LUMA_WEIGHTS, dtype=np.float32)
    name = Path(source).name if source else "the image"
    if notice:
        warnings.warn(f"{name} is a colour (RGB) image; converted to one {modality} band (luminance)",
                      UserWarning, stacklevel=2)
    note = "converted from RGB to luminance (0.299 R + 0.587 G + 0.114 B)"
    return Band(np.clip(luma, 0.0, 1.0), modality, wavelength_nm, source, bit_depth, [*notes, note])


def open_modality(path: str | os.PathLike[str], *, modality: str | None = None,
                  wavelength_nm: float | None = None) -> Band | BandStack:
    """Open one image file as a band or, for a colour file, a three-band stack.

    Args:
        path: PNG, TIFF, BMP or JPEG file (8- or 16-bit; float TIFF accepted).
        modality: ``"rgb"`` (a colour file), or one of :data:`SINGLE_BAND_MODALITIES` (``"ir"``,
            ``"xray"``, ``"band"``, ``"gray"``). ``None``: a colour file gives an RGB stack, a grey
            file a ``"band"`` when ``wavelength_nm`` is given, else a ``"gray"`` band.
        wavelength_nm: centre wavelength of a narrow band (nm).

    Returns:
        A :class:`Band` (grey file, or colour file where one band is expected: converted to luminance
        with a notice) or a :class:`BandStack` of ``rgb-r``, ``rgb-g``, ``rgb-b`` (colour file).

    Raises:
        InputNotFoundError: no such file.
        UnreadableInputError: empty, corrupt, truncated or unsupported file.
        InvalidImageError: NaN/inf pixels, fewer than 2x2 pixels, a grey file opened as ``"rgb"``.
        InvalidParameterError: unknown modality.

    Units:
        Pixel values are file samples divided by ``2**bit_depth - 1`` (dimensionless, ``[0, 1]``).

    Example:
        >>> ir = open_modality("painting_ir.tif", modality="ir")  # doctest: +SKIP
        >>> rgb = open_modality("painting.jpg")  # doctest: +SKIP
    """
    allowed = ("rgb", *SINGLE_BAND_MODALITIES)
    if modality is not None and modality not in allowed:
        raise InvalidParameterError(f"unknown modality {modality!r}; expected one of {', '.join(allowed)}")
    p = _check_file(path)
    arr = _read_samples(p)
    if arr.ndim == 3 and arr.shape[2] in (1, 2):  # grey (+ alpha)
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise UnreadableInputError(f"{p.name}: unsupported pixel layout {arr.shape}")
    if arr.shape[0] < 2 or arr.shape[1] < 2:
        raise InvalidImageError(f"{p.name} is only {arr.shape[0]}x{arr.shape[1]} pixels")
    data, bits, notes = _scale(arr, p.name)
    source = str(p.resolve())

    if data.ndim == 2:
        if modality == "rgb":
            raise InvalidImageError(f"{p.name} is a grey image, not RGB; open it with a single-band modality")
        mod = modality or ("band" if wavelength_nm is not None else "gray")
        return Band(data, mod, wavelength_nm, source, bits, notes)

    rgb = data[..., :3]
    if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all() and modality != "rgb":
        mod = modality or ("band" if wavelength_nm is not None else "gray")
        note = "grey image stored as RGB; one channel kept"
        return Band(rgb[..., 0], mod, wavelength_nm, source, bits, [*notes, note])
    bands = [Band(rgb[..., i], m, None, source, bits, list(notes)) for i, m in enumerate(("rgb-r", "rgb-g", "rgb-b"))]
    stack = BandStack(bands)
    if modality == "rgb" or (modality is None and wavelength_nm is None):
        return stack
    return to_single_band(stack, modality=modality or "band", wavelength_nm=wavelength_nm, source=source)


# -- CAVE scenes --------------------------------------------------------------------------------------
def cave_wavelength(index: int) -> float:
    """Wavelength (nm) of CAVE band ``index`` (1..31): ``390 + 10 * index``."""
    return CAVE_FIRST_NM + CAVE_STEP_NM * int(index)


def load_cave_scene(folder: str | os.PathLike[str]) -> tuple[np.ndarray, BandStack]:
    """Read a CAVE-style multispectral scene: one ``*_RGB.bmp`` and ``*_ms_NN.png`` bands.

    Bands are searched in ``folder`` and all its subfolders; band ``NN`` lies at ``390 + 10 NN`` nm.
    Bands whose geometry differs from the RGB image (e.g. copies stretched to 640x512) are resized
    back onto the RGB grid (bilinear, anti-aliased), with a notice per group and a note on each band.

    Args:
        folder: the scene folder.

    Returns:
        ``(rgb, stack)``: ``rgb`` is ``(H, W, 3)`` ``float32`` in ``[0, 1]``; ``stack`` holds the bands
        (modality ``"band"``) sorted by wavelength on the same ``(H, W)`` grid.

    Raises:
        InputNotFoundError: no folder, no ``*_RGB.bmp`` or no band files.
        InvalidParameterError: several ``*_RGB.bmp`` files.
        UnreadableInputError, InvalidImageError: a file cannot be read or used.

    Units:
        Wavelengths in nm; pixel values in ``[0, 1]`` (16-bit samples / 65535, 8-bit / 255).

    References:
        Yasuma et al. (2008), CAVE multispectral image database, Columbia University.
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise InputNotFoundError(f"{root}: no such folder")
    rgb_files = sorted(root.glob("*_RGB.bmp")) or sorted(root.rglob("*_RGB.bmp"))
    if not rgb_files:
        raise InputNotFoundError(f"{root}: no *_RGB.bmp image found")
    if len(rgb_files) > 1:
        raise InvalidParameterError(
            f"{root}: several RGB images ({', '.join(f.name for f in rgb_files)}); point to one scene folder"
        )
    rgb_stack = open_modality(rgb_files[0], modality="rgb")
    assert isinstance(rgb_stack, BandStack)
    rgb = np.moveaxis(rgb_stack.as_array(), 0, -1)
    grid = rgb_stack.shape

    found: dict[int, list[Path]] = {}
    for f in sorted(root.rglob("*.png")):
        m = _CAVE_BAND.search(f.name)
        if m:
            found.setdefault(int(m.group(1)), []).append(f)
    if not found:
        raise InputNotFoundError(f"{root}: no *_ms_NN.png band files found")

    bands: list[Band] = []
    resized: dict[tuple[int, int], list[float]] = {}
    for index in sorted(found):
        nm = cave_wavelength(index)
        candidates = [open_modality(f, modality="band", wavelength_nm=nm) for f in found[index]]
        band = next((b for b in candidates if isinstance(b, Band) and b.shape == grid), candidates[0])
        assert isinstance(band, Band)
        if len(candidates) > 1:
            band.notes.append(f"{len(candidates)} files for band {index:02d}; kept {Path(band.source).name}")
        if band.shape != grid:
            orig = band.shape
            resized.setdefault(orig, []).append(nm)
            band = band.resample(grid)
            band.notes.append(
                f"file geometry {orig[1]}x{orig[0]} differs from the RGB image ({grid[1]}x{grid[0]}); "
                "treated as a stretched copy and resized back onto the RGB grid"
            )
        bands.append(band)

    stack_notes = []
    for orig, nms in resized.items():
        span = f"{min(nms):g}–{max(nms):g} nm" if len(nms) > 1 else f"{nms[0]:g} nm"
        message = (f"bands {span} were {orig[1]}×{orig[0]} (stretched); resized to {grid[1]}×{grid[0]}"
                   if len(nms) > 1 else
                   f"band {span} was {orig[1]}×{orig[0]} (stretched); resized to {grid[1]}×{grid[0]}")
        warnings.warn(message, UserWarning, stacklevel=2)
        stack_notes.append(message)
    return rgb, BandStack(bands, notes=stack_notes)
