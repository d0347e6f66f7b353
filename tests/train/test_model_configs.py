"""Training configs nest their model's config under ``model`` (artlens.train.runs.nest_model_settings):
run folders whose config.json holds the model's fields at the top level still load, with the same values."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

from artlens.train.runs import open_run  # noqa: E402

# config.json of an encoder run written when the autoencoder's fields were copied to the top level
# (the trainer settings already nested)
OLD_ENCODER_CONFIG = {
    "seed": 3, "trainer": {"max_epochs": 5, "max_steps": -1, "max_time": None, "patience": 8, "monitor": "val_loss",
                           "mode": "min", "accelerator": "cpu", "devices": 1, "strategy": "auto",
                           "precision": "32-true", "checkpoint_every_n_steps": 200, "log_every_n_steps": 1,
                           "deterministic": True},
    "data": "coll", "kind": "swae", "label_column": None, "backbone": "test_efficientnet", "pretrained_backbone": False,
    "n_patches": 0, "max_side": 512, "code_dim": 16, "hidden": 64, "noise_std": 0.1, "mask_prob": 0.25,
    "prior": "sphere", "swd_weight": 0.7, "swd_projections": 20, "lr": 0.002, "weight_decay": 0.0001,
    "batch_size": 64, "val_fraction": 0.1, "feature_cache": None, "workers": 2,
}
# and one written before the trainer settings were nested as well
OLDEST_ENCODER_CONFIG = {**{k: v for k, v in OLD_ENCODER_CONFIG.items() if k != "trainer"},
                         "max_epochs": 5, "patience": 8, "accelerator": "cpu", "devices": 1, "strategy": "auto",
                         "checkpoint_every_n_steps": 200, "max_steps": -1, "max_time": None}
ENCODER_MODEL_FIELDS = ("kind", "backbone", "pretrained_backbone", "n_patches", "max_side", "code_dim", "hidden",
                        "noise_std", "mask_prob", "prior", "swd_weight", "swd_projections")


@pytest.mark.parametrize("old", [OLD_ENCODER_CONFIG, OLDEST_ENCODER_CONFIG], ids=["flat-model", "all-flat"])
def test_an_old_flat_encoder_config_loads_with_its_model_nested(old):
    from artlens.paintings.encoders import AutoencoderConfig
    from artlens.train.encoders import EncoderTrainConfig

    cfg = EncoderTrainConfig.model_validate(old)
    assert isinstance(cfg.model, AutoencoderConfig)
    assert {k: getattr(cfg.model, k) for k in ENCODER_MODEL_FIELDS} == {k: old[k] for k in ENCODER_MODEL_FIELDS}
    assert (cfg.seed, cfg.data, cfg.lr, cfg.batch_size, cfg.trainer.max_epochs, cfg.trainer.accelerator) == \
        (3, "coll", 0.002, 64, 5, "cpu")
    dumped = cfg.model_dump()
    assert not set(ENCODER_MODEL_FIELDS) & set(dumped)  # written back nested
    assert EncoderTrainConfig.model_validate(dumped) == cfg
    # the autoencoder it builds: the model's fields and the features' length
    assert cfg.autoencoder_config(1280) == AutoencoderConfig(**{**dumped["model"], "in_dim": 1280})


def test_an_old_encoder_run_folder_is_resumed_with_its_settings(tmp_path):
    from artlens.train.encoders import EncoderTrainConfig

    run = tmp_path / "old"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"config": OLD_ENCODER_CONFIG, "artlens_version": "0.1"}))
    _, cfg = open_run(run, EncoderTrainConfig(data="other"), resume=True)
    assert cfg.data == "coll" and cfg.model.kind == "swae" and cfg.model.code_dim == 16 and cfg.model.prior == "sphere"


def test_encoder_model_defaults_and_a_partial_model():
    from artlens.paintings.encoders import AutoencoderConfig
    from artlens.train.encoders import EncoderTrainConfig

    assert EncoderTrainConfig(data="x").model == AutoencoderConfig()
    cfg = EncoderTrainConfig(data="x", model={"kind": "swae", "code_dim": 8})
    assert (cfg.model.kind, cfg.model.code_dim, cfg.model.hidden) == ("swae", 8, 512)
    assert EncoderTrainConfig(data="x", model=AutoencoderConfig(hidden=7)).model.hidden == 7
    with pytest.raises(ValueError, match="code_dim"):
        EncoderTrainConfig(data="x", model={"code_dim": 0})
    with pytest.raises(ValueError, match="backbone_checkpoint"):
        EncoderTrainConfig(data="x", model={"backbone_checkpoint": "b.safetensors"})


# config.json of a verifier run written when the verifier's fields were copied to the top level
OLD_VERIFIER_CONFIG = {
    "seed": 2, "data": "coll", "label_column": "label", "kind": "metric", "backbone": "test_efficientnet",
    "pretrained_backbone": False, "n_patches": 2, "max_side": 512, "hidden": 64, "embed_dim": 32, "dropout": 0.1,
    "margin": 0.4, "lr": 0.001, "weight_decay": 0.0001, "batch_size": 256, "pairs_per_epoch": 1024, "val_pairs": 400,
    "hard_negative_fraction": 0.5, "neighbours": 10, "unseen_artists": 1, "unseen": None, "val_artists": 1,
    "blend": 0.5, "val_fraction": 0.15, "test_fraction": 0.2, "fine_tune_epochs": 0, "fine_tune_blocks": 2,
    "fine_tune_lr": 1e-05, "centre": False, "pooling": "avg", "signed_sqrt": True, "feature_cache": None,
    "workers": 2, "max_epochs": 3, "accelerator": "cpu", "devices": 1,
}
VERIFIER_MODEL_FIELDS = ("kind", "backbone", "pretrained_backbone", "n_patches", "max_side", "hidden", "embed_dim",
                         "dropout", "centre", "pooling", "signed_sqrt")


def test_an_old_flat_verifier_config_loads_with_its_model_nested(tmp_path):
    from artlens.train.verifier import VerifierTrainConfig

    cfg = VerifierTrainConfig.model_validate(OLD_VERIFIER_CONFIG)
    assert {k: getattr(cfg.model, k) for k in VERIFIER_MODEL_FIELDS} == \
        {k: OLD_VERIFIER_CONFIG[k] for k in VERIFIER_MODEL_FIELDS}
    assert (cfg.seed, cfg.margin, cfg.blend, cfg.pairs_per_epoch, cfg.trainer.max_epochs) == (2, 0.4, 0.5, 1024, 3)
    dumped = cfg.model_dump()
    assert not set(VERIFIER_MODEL_FIELDS) & set(dumped)
    assert VerifierTrainConfig.model_validate(dumped) == cfg
    run = tmp_path / "old"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"config": OLD_VERIFIER_CONFIG, "artlens_version": "0.1"}))
    _, resumed = open_run(run, VerifierTrainConfig(data="other"), resume=True)
    assert resumed == cfg


def test_verifier_model_defaults_and_what_training_decides():
    from artlens.paintings.verify import VerifierConfig
    from artlens.train.verifier import VerifierTrainConfig

    m = VerifierTrainConfig(data="x").model
    assert (m.kind, m.centre, m.pooling, m.signed_sqrt, m.n_patches) == ("metric", True, "stats", True, 4)
    m = VerifierTrainConfig(data="x", model={"hidden": 8}).model
    assert (m.hidden, m.centre, m.pooling) == (8, True, "stats")  # a dict changes only what it names
    assert VerifierTrainConfig(data="x", model=VerifierConfig(hidden=8)).model.centre is False  # taken whole
    siamese = VerifierTrainConfig(data="x", model={"kind": "siamese"}).verifier_config()
    assert (siamese.n_patches, siamese.centre, siamese.pooling, siamese.signed_sqrt) == (0, False, "avg", False)
    with pytest.raises(ValueError, match="pooling"):
        VerifierTrainConfig(data="x", model={"pooling": "max"})
    with pytest.raises(ValueError, match="kind"):
        VerifierTrainConfig(data="x", model={"kind": "triplet"})
    for trained in ({"blend": 0.3}, {"calibration": {"a": 1.0, "b": 0.0}}, {"backbone_checkpoint": "b.safetensors"}):
        with pytest.raises(ValueError, match="set by training"):
            VerifierTrainConfig(data="x", model=trained)


# config.json of a classifier run written when the classifier's fields were copied to the top level
OLD_CLASSIFIER_CONFIG = {
    "seed": 4, "data": "labels.csv", "label_column": "style", "split_column": "split", "images_dir": None,
    "variant": "patch", "backbone": "test_efficientnet", "pretrained_backbone": False, "feature_pooling": "avg",
    "n_tiles": 6, "tiles_per_step": 2, "max_side": 512, "hidden": 32, "dropout": 0.1, "pooling": "mean",
    "balance": "loss", "label_smoothing": 0.1, "mirror": True, "tta": False,
    "stages": [{"unfreeze": 0, "epochs": 60, "lr": 0.001}], "weight_decay": 0.01, "warmup_epochs": 2,
    "batch_size": 32, "image_batch_size": 8, "color_jitter": 0.0, "crop_scale": 0.8, "val_fraction": 0.15,
    "test_fraction": 0.15, "drop_rare": False, "min_per_class": 2, "refit_train_val": False, "feature_cache": None,
    "workers": 2, "trainer": {"patience": 10, "accelerator": "cpu"},
}
CLASSIFIER_MODEL_FIELDS = ("variant", "backbone", "pretrained_backbone", "feature_pooling", "n_tiles", "max_side",
                           "hidden", "dropout", "pooling")


def test_an_old_flat_classifier_config_loads_with_its_model_nested(tmp_path):
    from artlens.train.classify import ClassifierTrainConfig

    cfg = ClassifierTrainConfig.model_validate(OLD_CLASSIFIER_CONFIG)
    assert {k: getattr(cfg.model, k) for k in CLASSIFIER_MODEL_FIELDS} == \
        {k: OLD_CLASSIFIER_CONFIG[k] for k in CLASSIFIER_MODEL_FIELDS}
    assert cfg.model.label_column == "style" and cfg.model.classes == []
    assert (cfg.seed, cfg.tiles_per_step, cfg.trainer.patience, cfg.trainer.accelerator) == (4, 2, 10, "cpu")
    dumped = cfg.model_dump()
    assert not set(CLASSIFIER_MODEL_FIELDS) & set(dumped)
    assert ClassifierTrainConfig.model_validate(dumped) == cfg
    run = tmp_path / "old"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"config": OLD_CLASSIFIER_CONFIG, "artlens_version": "0.1"}))
    _, resumed = open_run(run, ClassifierTrainConfig(data="other"), resume=True)
    assert resumed == cfg
    built = cfg.classifier_config(["a", "b"], 336, ["blocks.1"])
    assert (built.classes, built.feature_dim, built.feature_levels, built.n_tiles, built.label_column) == \
        (["a", "b"], 336, ["blocks.1"], 6, "style")


def test_classifier_model_defaults_checks_and_what_training_decides():
    from artlens.train.classify import ClassifierTrainConfig

    m = ClassifierTrainConfig(data="x").model
    assert (m.variant, m.feature_pooling, m.n_tiles, m.hidden, m.classes) == ("two_branch", "stats", 4, 512, [])
    cfg = ClassifierTrainConfig(data="x", label_column="genre", model={"variant": "global", "hidden": 8})
    assert (cfg.model.variant, cfg.model.hidden, cfg.model.feature_pooling, cfg.model.label_column) == \
        ("global", 8, "stats", "genre")
    assert cfg.classifier_config(["a", "b"], 16).n_tiles == 0  # the global variant reads no tiles
    for bad, word in (({"variant": "x"}, "variant"), ({"pooling": "max"}, "pooling"),
                      ({"feature_pooling": "max"}, "feature_pooling"), ({"dropout": 1.0}, "dropout"),
                      ({"n_tiles": -1}, "n_tiles"), ({"max_side": 10}, "max_side"),
                      ({"classes": ["a"]}, "set by training"), ({"feature_dim": 8}, "set by training")):
        with pytest.raises(ValueError, match=word):
            ClassifierTrainConfig(data="x", model=bad)
