"""The local web app (``artlens serve``): the catalog, deep zoom with map overlays, and analyses as
background jobs, in a browser, with nothing fetched from outside the machine. See docs/web.md.

FastAPI is imported only here, so the CLI's other commands never import it.
"""

from artlens.web.app import create_app

__all__ = ["create_app"]
