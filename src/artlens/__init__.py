"""artlens: tools for technical art history.

Canvas thread counting and matching (:mod:`artlens.canvas`), painting comparison
(:mod:`artlens.paintings`) and visible-versus-hidden image comparison (:mod:`artlens.beneath`),
over shared foundations: :mod:`artlens.io`, :mod:`artlens.synth`, :mod:`artlens.models`,
:mod:`artlens.train`, :mod:`artlens.catalog` and :mod:`artlens.report`.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("artlens")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
