"""Image input: plates with physical resolution, read in windows (:func:`open_plate`)."""

from artlens.io.image import MAX_PIXELS, ImageInfo, Plate, open_plate

__all__ = ["MAX_PIXELS", "ImageInfo", "Plate", "open_plate"]
