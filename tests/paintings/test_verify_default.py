"""The verifier shipped with artlens loads offline and scores a pair through the CLI contract."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("torch")


def test_shipped_verifier_loads_and_scores(tmp_path, cli):
    from artlens.models import pretrained_path
    from artlens.models.backbones import offline_checksum
    from artlens.paintings.verify import DEFAULT_VERIFIER, load_verifier

    shipped = pretrained_path(DEFAULT_VERIFIER)
    assert shipped is not None and pretrained_path("painting_verifier.verifier_default") == shipped
    v = load_verifier()
    assert v.config.kind == "metric" and v.config.calibration is not None and 0 < v.config.blend <= 1
    assert v.config.centre and float(v.head.mean_global.abs().sum()) > 0  # centred on its training images
    assert (v.config.pooling, v.config.signed_sqrt, v.extractor.dim) == ("stats", True, 1536)
    assert v.config.backbone == "tf_efficientnet_lite2" and v.extractor.checksum == offline_checksum(v.config.backbone)
    rng = np.random.default_rng(0)
    paths = []
    for k in range(2):
        img = (rng.random((300, 260, 3)) * 255).astype(np.uint8)
        paths.append(tmp_path / f"p{k}.jpg")
        Image.fromarray(img).save(paths[-1])
    code, out, err = cli("verify", *paths, "--json")
    assert code == 0, err
    row = json.loads(out)
    assert 0.0 <= row["same_artist_probability"] <= 1.0
    assert (row["verifier"]["pooling"], row["verifier"]["signed_sqrt"]) == ("stats", True)
    assert row["verifier"]["blend"] == v.config.blend
    assert row["verifier"]["model_checksum"] == json.loads(
        (shipped / "config.json").read_text())["sha256"]
    # no collection at hand: the calibration of unadapted scores, said in the record and on stderr
    assert v.config.calibration_unadapted is not None and v.config.calibration_unadapted != v.config.calibration
    assert row["verifier"]["calibration"] == v.config.calibration_unadapted
    assert row["verifier"]["calibration_for"].startswith("scores centred on the training collection")
    assert "no collection at hand to adapt to" in err
    raw = row["score"]
    u = v.config.calibration_unadapted
    if row.get("typicality", {}).get("status", "typical") == "typical":
        assert row["same_artist_probability"] == pytest.approx(1 / (1 + np.exp(-(u["a"] * raw + u["b"]))), abs=1e-6)
