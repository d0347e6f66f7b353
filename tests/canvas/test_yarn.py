"""Tests of the yarn-statistics descriptor (artlens.canvas.yarn), the shipped yarn comparison and the old
Siamese folders, and of how `canvas compare` reports its methods and their disagreement."""

from __future__ import annotations

import numpy as np
import pytest

from artlens.canvas.collection import evidence_agreement
from artlens.canvas.fabric import FabricModel, YarnModel, load_fabric_model
from artlens.canvas.yarn import FAMILY_FEATURES, PAIR_FEATURES, YarnDescriptor, pair_features, yarn_descriptor
from artlens.errors import InputNotFoundError, InvalidImageError
from artlens.models import list_pretrained
from artlens.synth import Roll

PPC = 100.0


def _cut(roll: Roll, x: float, y: float, seed: int, **kw) -> np.ndarray:
    return roll.cut(x, y, 3.0, 3.0, seed=seed, px_per_cm=PPC, weave_contrast=0.3, noise=0.02, **kw).image


@pytest.fixture(scope="module")
def rolls() -> dict[str, Roll]:
    """Two rolls of the same densities, woven from different yarns (jitter, width, slubs)."""
    return {
        "a": Roll(13.0, 15.0, seed=1, length_cm=60, width_cm=40, spacing_jitter=0.09, thread_width=0.7,
                  slub_rate=0.8, spacing_correlation=0.6),
        "b": Roll(13.0, 15.0, seed=2, length_cm=60, width_cm=40, spacing_jitter=0.02, thread_width=1.1,
                  slub_rate=0.0),
    }


def test_descriptor_is_polarity_and_tone_invariant(rolls):
    plate = rolls["a"].cut(5, 5, 3.0, 3.0, seed=1, px_per_cm=PPC, weave_contrast=0.3, noise=0.02)
    img = plate.image
    d = yarn_descriptor(img, PPC)
    assert set(d.families) == {"horizontal", "vertical"} and set(d.families["vertical"]) == set(FAMILY_FEATURES)
    truth = plate.mean_truth()
    for f in ("horizontal", "vertical"):  # the spectral peak of a very irregular weave: within 0.3 threads/cm
        assert d.families[f]["density"] == pytest.approx(truth[f"{f}_density"], abs=0.3)
    assert not d.threads_bright  # artlens X-rays: threads dark, interstices bright
    inv = yarn_descriptor(255 - img, PPC)  # inverted grey levels
    gam = yarn_descriptor((img / 255.0) ** 2.0, PPC)  # a gamma curve
    assert inv.threads_bright
    assert np.allclose(d.vector(), inv.vector(), equal_nan=True, atol=1e-9)
    assert np.allclose(d.vector(), gam.vector(), equal_nan=True, atol=0.05 * np.abs(d.vector()) + 1e-3)
    again = YarnDescriptor.from_dict(d.to_dict())
    assert np.allclose(again.vector(), d.vector(), equal_nan=True, atol=1e-5)
    with pytest.raises(InvalidImageError):
        yarn_descriptor(img[:150, :150], PPC)  # smaller than 2 x 2 cm


def test_pair_features_pair_the_families_of_a_turned_cut(rolls):
    a = yarn_descriptor(_cut(rolls["b"], 5, 5, seed=1), PPC)
    b = yarn_descriptor(np.rot90(_cut(rolls["b"], 20, 30, seed=2)), PPC)
    x, swapped = pair_features(a, b)
    assert swapped and x.shape == (len(PAIR_FEATURES),)
    assert x[PAIR_FEATURES.index("max:density")] < 0.3  # 13 with 13, 15 with 15 threads/cm


def test_cuts_of_one_roll_score_higher_than_a_roll_of_equal_density(rolls):
    model = load_fabric_model()  # the shipped default
    assert isinstance(model, YarnModel) and model.calibration["fitted"]
    a1 = model.describe(_cut(rolls["a"], 5, 5, seed=1), px_per_cm=PPC)
    a2 = model.describe(_cut(rolls["a"], 30, 40, seed=2, invert=True), px_per_cm=PPC)
    b1 = model.describe(_cut(rolls["b"], 5, 5, seed=3), px_per_cm=PPC)
    same, other = model.compare(a1, a2), model.compare(a1, b1)
    assert same["score"] > other["score"]
    for r in (same, other):
        assert 0.0 <= r["score"] <= 1.0 and r["method"] == "yarn-statistics" and r["calibrated"]
        assert r["model_checksum"] == model.config["sha256"]
    assert other["largest_differences"] and other["largest_differences"][0]["feature"] in PAIR_FEATURES
    assert other["logit"] < same["logit"]
    for z in (-50.0, -1.0, 0.0, 3.0, 80.0):  # calibration maps any logit into [0, 1]
        assert 0.0 <= model.calibrate(z) <= 1.0
    assert model.calibrate(1.0) > model.calibrate(-1.0)


def test_old_siamese_folders_still_load():
    assert {"yarn_logistic.fabric_default", "siamese_fabric.siamese_v1"} <= set(list_pretrained(family="fabric"))
    old = load_fabric_model("siamese_v1")
    assert isinstance(old, FabricModel) and old.kind == "siamese" and old.calibration["fitted"]
    assert FabricModel.load(old.path).config["sha256"] == old.config["sha256"]
    with pytest.raises(InputNotFoundError, match="shipped models"):
        load_fabric_model("no_such_model")


def test_density_and_fabric_disagreement_is_reported():
    r = evidence_agreement(0.002, 0.05, "yarn-statistics")
    assert r["disagree"] and r["density"] == "shared threads" and r["fabric"] == "different rolls"
    assert "disagree" in r["note"] and "yarn-statistics" in r["note"]
    assert evidence_agreement(0.5, 0.05)["disagree"] is False  # no shared threads is no evidence against
    assert evidence_agreement(0.002, 0.9)["fabric"] == "same roll"
    assert evidence_agreement(None, None) == {"density": None, "fabric": None, "disagree": False, "note": None}
