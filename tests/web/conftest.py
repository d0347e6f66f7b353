"""Fixtures of the web app's tests: a real catalog and data folder in tmp_path, small synthetic plates."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

BASE_URL = "http://127.0.0.1:8000"


@pytest.fixture(scope="session")
def plate_tif(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2 x 2 cm synthetic X-ray plate at 100 px/cm (TIFF with resolution tags)."""
    from artlens.synth import make_plate, write_plate_tiff

    plate = make_plate(height_cm=2.0, width_cm=2.0, px_per_cm=100.0, horizontal_density=12.0,
                       vertical_density=15.0, seed=1)
    return write_plate_tiff(tmp_path_factory.mktemp("plates") / "plate.tif", plate)


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[Callable[..., object]]:
    """``make_client(**create_app kwargs)`` → an entered TestClient on a fresh catalog in tmp_path.

    ``browser=True``: the client acts as a browser on the app's pages: it holds a session cookie and sends
    that page's form token as ``X-CSRF-Token`` with every request, as ``static/app.js`` does (tests that mix
    page views, form posts and API calls on one client). Without it, a client that has seen a page holds the
    session cookie and must send the token itself."""
    from fastapi.testclient import TestClient

    from artlens.web import create_app

    clients = []

    def make(**kwargs: object) -> TestClient:
        kwargs.setdefault("workers", 1)
        browser = kwargs.pop("browser", False)
        app = create_app(kwargs.pop("catalog", tmp_path / "artlens.db"), kwargs.pop("data_dir", None), **kwargs)
        client = TestClient(app, base_url=BASE_URL)
        client.__enter__()
        clients.append(client)
        if browser:
            client.headers["X-CSRF-Token"] = _page_token(client)
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)


def _page_token(client, url: str = "/upload") -> str:
    """The form token of the page at ``url`` (the client keeps the session cookie the page sets)."""
    page = client.get(url)
    assert page.status_code == 200 and client.cookies.get("artlens_session"), page.text
    fields = re.findall(r'name="csrf_token" value="([0-9a-f]{64})"', page.text)
    meta = re.findall(r'<meta name="csrf-token" content="([0-9a-f]{64})">', page.text)
    assert fields and meta == fields[:1]
    return fields[0]


def _upload(client, path: Path, modality: str = "xray", **data: str) -> dict:
    r = client.post("/api/images", files={"file": (path.name, path.read_bytes())}, data={"modality": modality, **data})
    assert r.status_code == 201, r.text
    return r.json()


def _wait_job(client, job_id: int, timeout: float = 90.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["state"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s: {job}")


@pytest.fixture
def upload() -> Callable[..., dict]:
    """``upload(client, path, modality="xray", **form)`` → the 201 JSON."""
    return _upload


@pytest.fixture
def page_token() -> Callable[..., str]:
    """``page_token(client, url="/upload")`` → the form token of that page (the client keeps its session)."""
    return _page_token


@pytest.fixture
def wait_job() -> Callable[..., dict]:
    """``wait_job(client, job_id)`` → the job's JSON once it is done, failed or cancelled."""
    return _wait_job


@pytest.fixture(scope="session")
def classifier_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny style classifier trained for one epoch (as tests/train/test_classify_train.py trains one); shared
    by the API and browser tests of the ``classify`` job."""
    pytest.importorskip("torch")
    import csv

    import numpy as np
    from PIL import Image

    from artlens.train.classify import ClassifierTrainConfig, Stage, train_classifier

    root = tmp_path_factory.mktemp("styles")
    rows = []
    for c, name in enumerate(["baroque", "cubism", "ukiyo-e"]):
        (root / "img" / name).mkdir(parents=True)
        for k in range(4):
            rng = np.random.default_rng(10 * c + k)
            a = np.zeros((170, 190, 3), np.float32)
            a[..., c] = 170
            a += (np.sin(np.arange(190) / (2 + c)) * 40)[None, :, None]
            Image.fromarray(np.clip(a + rng.normal(0, 20, a.shape), 0, 255).astype(np.uint8)).save(
                root / "img" / name / f"{k}.png")
            rows.append([f"img/{name}/{k}.png", name, ["train", "train", "val", "test"][k]])
    with open(root / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "style", "split"])
        w.writerows(rows)
    cfg = ClassifierTrainConfig(
        data=str(root / "labels.csv"), label_column="style",
        model={"backbone": "test_efficientnet", "pretrained_backbone": False, "n_tiles": 2, "max_side": 256,
               "hidden": 16},
        tiles_per_step=1, batch_size=4, image_batch_size=3, stages=[Stage(unfreeze=0, epochs=1, lr=1e-3)],
        trainer={"accelerator": "cpu"}, workers=0, warmup_epochs=0)
    train_classifier(cfg, root / "run", report=None)
    return root / "run"


@pytest.fixture
def postgres_url(postgres_database: str) -> str:
    """A fresh PostgreSQL database (the shared ``postgres_database`` fixture of tests/conftest.py)."""
    return postgres_database
