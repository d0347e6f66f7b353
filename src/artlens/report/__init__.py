"""Figures and self-contained HTML reports.

Thread counting: :func:`density_map_figure` and :func:`angle_map_figure` draw one direction's map
over a :func:`preview_image` of the plate (axes in cm, colour bars in threads/cm or degrees);
:func:`write_maps` saves the four map PNGs of a plate and :func:`write_threads_report` writes
``report.html`` with every image embedded, so the file stands alone.

All figures use matplotlib's Agg canvas directly (no ``pyplot`` state).
"""

from artlens.report.figures import (
    DIRECTION_TITLES,
    MAP_NAMES,
    angle_map_figure,
    density_map_figure,
    figure_to_png_bytes,
    plate_figure,
    preview_image,
    save_figure,
)
from artlens.report.html import (
    PlateSection,
    png_data_uri,
    render_threads_report,
    write_maps,
    write_threads_report,
)

__all__ = [
    "DIRECTION_TITLES",
    "MAP_NAMES",
    "PlateSection",
    "angle_map_figure",
    "density_map_figure",
    "figure_to_png_bytes",
    "plate_figure",
    "png_data_uri",
    "preview_image",
    "render_threads_report",
    "save_figure",
    "write_maps",
    "write_threads_report",
]
