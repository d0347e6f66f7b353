"""Feature autoencoders (DAE, SWAE): sliced Wasserstein distance by hand, one-epoch training, save/load
round trip, the registry embedders, and index → search through the CLI-trained encoder."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")

from artlens.errors import InputNotFoundError, InvalidParameterError, UnreadableInputError  # noqa: E402
from artlens.paintings.embedders import create_embedder, embedder_from_record, embedder_record  # noqa: E402
from artlens.paintings.encoders import (  # noqa: E402
    AutoencoderConfig,
    AutoencoderEmbedder,
    encode_vectors,
    load_autoencoder,
    make_autoencoder,
    sample_prior,
    save_autoencoder,
    sliced_wasserstein,
)

TINY = "test_efficientnet"  # timm's tiny test model: random weights, no download


def _painting(path, artist: int, seed: int, size=(96, 80)) -> None:
    rng = np.random.default_rng(seed)
    base = np.zeros((size[1], size[0], 3), np.float32)
    base[..., artist % 3] = 90 + 50 * (artist // 3)
    stripes = (np.sin(np.arange(size[0]) / (2 + artist)) * 40)[None, :, None]
    img = np.clip(base + stripes + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
    Image.fromarray(img).save(path)


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    root = tmp_path_factory.mktemp("artists")
    for a in range(4):
        (root / f"artist{a}").mkdir()
        for k in range(6):
            _painting(root / f"artist{a}" / f"p{k}.png", a, 10 * a + k)
    return root


@pytest.fixture(scope="module")
def dae_run(collection, tmp_path_factory):
    from artlens.train.encoders import EncoderTrainConfig, train_encoder

    run = tmp_path_factory.mktemp("run") / "dae"
    cfg = EncoderTrainConfig(data=str(collection), model={"kind": "dae", "backbone": TINY, "pretrained_backbone": False,
                                                          "n_patches": 1, "max_side": 128, "code_dim": 8, "hidden": 32},
                             batch_size=8, workers=0,
                             trainer={"max_epochs": 1, "accelerator": "cpu"})
    return run, train_encoder(cfg, run)


# --------------------------------------------------------------------------------------------------
# sliced Wasserstein distance
# --------------------------------------------------------------------------------------------------


def test_sliced_wasserstein_of_identical_sets_is_zero() -> None:
    x = torch.randn(64, 16, generator=torch.Generator().manual_seed(0))
    assert float(sliced_wasserstein(x, x, 100)) == pytest.approx(0.0, abs=1e-12)
    # order within a set does not matter: same point cloud, permuted
    assert float(sliced_wasserstein(x, x[torch.randperm(64)], 100)) == pytest.approx(0.0, abs=1e-10)


def test_sliced_wasserstein_of_shifted_sets_by_hand() -> None:
    # 1-D: sorted values pair up, every pair differs by the shift t = 3 -> SW_2^2 = 9, SW_1 = 3
    x = torch.tensor([[0.0], [1.0], [5.0], [-2.0]])
    one = torch.ones(1, 1)
    assert float(sliced_wasserstein(x, x + 3.0, projections=one)) == pytest.approx(9.0)
    assert float(sliced_wasserstein(x, x + 3.0, projections=one, p=1)) == pytest.approx(3.0)
    # 2-D, shift t = (2, 0), directions e1 and e2: (|t·e1|² + |t·e2|²) / 2 = (4 + 0) / 2 = 2
    y = torch.tensor([[0.0, 0.0], [1.0, 3.0], [2.0, -1.0]])
    t = torch.tensor([2.0, 0.0])
    assert float(sliced_wasserstein(y, y + t, projections=torch.eye(2))) == pytest.approx(2.0)
    # random directions in d dims: E[(θ·t)²] = |t|² / d  (here 4 / 8 = 0.5), a positive distance
    z = torch.randn(32, 8, generator=torch.Generator().manual_seed(1))
    sw = float(sliced_wasserstein(z, z + torch.tensor([2.0] + [0.0] * 7), 4000,
                                  generator=torch.Generator().manual_seed(2)))
    assert sw == pytest.approx(0.5, rel=0.1)
    with pytest.raises(InvalidParameterError, match="same shape"):
        sliced_wasserstein(torch.zeros(3, 2), torch.zeros(4, 2))


def test_sliced_wasserstein_is_differentiable_and_priors_are_right() -> None:
    s = sample_prior("sphere", 100, 5, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(s.norm(dim=1).numpy(), 1.0, atol=1e-5)
    g = sample_prior("gaussian", 4000, 3, generator=torch.Generator().manual_seed(0))
    assert abs(float(g.std()) - 1.0) < 0.05
    x = torch.zeros(100, 5, requires_grad=True)
    sliced_wasserstein(x, s, 20).backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    with pytest.raises(InvalidParameterError, match="prior"):
        sample_prior("uniform", 3, 2)


# --------------------------------------------------------------------------------------------------
# training, saving, loading
# --------------------------------------------------------------------------------------------------


def test_one_epoch_training_writes_a_loadable_encoder(dae_run, collection) -> None:
    run, result = dae_run
    model_dir = run / "model"
    for name in ("config.json", "encoder.safetensors", "backbone.safetensors"):
        assert (model_dir / name).is_file()
    assert (run / "features.npz").is_file() and (run / "metrics.csv").is_file() and (run / "last.ckpt").is_file()
    assert result["images"] == 24 and result["train"] + result["val"] == 24
    ev = json.loads((run / "evaluation.json").read_text())["evaluation"]
    assert np.isfinite(ev["val_loss"]) and ev["retrieval"]["label_column"] == "label"
    assert 0.0 <= ev["retrieval"]["map_at_10_codes"] <= 1.0
    doc = json.loads((model_dir / "config.json").read_text())
    assert doc["model"] == "painting_autoencoder" and doc["config"]["kind"] == "dae"
    assert doc["config"]["backbone_checkpoint"] == "backbone.safetensors" and len(doc["sha256"]) == 64
    assert result["embedder"] == {"name": "dae", "config": {"model": str(model_dir.resolve())}}


def test_save_load_round_trip_gives_the_same_codes(tmp_path) -> None:
    cfg = AutoencoderConfig(kind="swae", in_dim=12, code_dim=4, hidden=16, n_patches=0, backbone=TINY)
    torch.manual_seed(0)
    model = make_autoencoder(cfg)
    x = np.random.default_rng(0).normal(size=(10, 12)).astype(np.float32)
    model.set_standardisation(torch.from_numpy(x))
    save_autoencoder(model, tmp_path / "m", extra={"note": "test"})
    again, doc = load_autoencoder(tmp_path / "m")
    assert again.config == cfg and doc["note"] == "test"
    np.testing.assert_allclose(encode_vectors(again, x), encode_vectors(model, x), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(encode_vectors(again, x), axis=1), 1.0, atol=1e-5)
    # a changed weights file is refused; so is a folder that is not an encoder
    with open(tmp_path / "m" / "encoder.safetensors", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(UnreadableInputError, match="checksum"):
        load_autoencoder(tmp_path / "m")
    with pytest.raises(InputNotFoundError):
        load_autoencoder(tmp_path / "nothing")
    with pytest.raises(InvalidParameterError, match="kind"):
        AutoencoderConfig(kind="vae")


def test_embedder_from_the_registry_and_from_its_record(dae_run, collection) -> None:
    run, _ = dae_run
    emb = create_embedder("dae", model=str(run), workers=0)  # a run directory works as well as run/model
    assert isinstance(emb, AutoencoderEmbedder) and emb.name == "dae" and emb.dim == 8
    paths = [collection / "artist0" / "p0.png", collection / "artist1" / "p0.png", collection / "nope.png"]
    batch = emb.embed_paths(paths)
    assert batch.vectors.shape == (2, 8) and [p for p, _ in batch.failures] == [str(paths[2])]
    np.testing.assert_allclose(np.linalg.norm(batch.vectors, axis=1), 1.0, atol=1e-5)
    record = embedder_record(emb)
    assert record["name"] == "dae" and record["config"] == {"model": str((run / "model").resolve())}
    again = embedder_from_record(json.loads(json.dumps(record)))
    np.testing.assert_allclose(again.embed_paths(paths[:2]).vectors, batch.vectors, atol=1e-5)
    generic = create_embedder("autoencoder", model=str(run / "model"))
    assert generic.name == "dae" and generic.checksum == emb.checksum
    with pytest.raises(InvalidParameterError, match="not a swae"):
        create_embedder("swae", model=str(run / "model"))


def test_cli_trains_a_swae_and_its_codes_index_and_search(cli, collection, tmp_path) -> None:
    from artlens.paintings.search import SearchIndex, build_index

    run = tmp_path / "swae"
    code, out, err = cli("paintings", "train-encoder", "--data", collection, "--kind", "swae", "--out", run,
                         "--epochs", "1", "--code-dim", "6", "--hidden", "32", "--backbone", TINY, "--random-backbone",
                         "--patches", "1", "--accelerator", "cpu", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["kind"] == "swae" and result["code_dim"] == 6
    assert np.isfinite(result["evaluation"]["val_swd"]) and result["evaluation"]["val_swd"] >= 0

    emb = create_embedder(result["embedder"]["name"], **result["embedder"]["config"], workers=0)
    summary = build_index(collection, tmp_path / "idx", emb, batch_size=10, progress=False)
    assert summary.images == 24 and summary.dim == 6 and summary.embedder == "swae"
    idx = SearchIndex.open(tmp_path / "idx")
    query = collection / "artist2" / "p3.png"
    hits = idx.search_image(query, k=5)  # the query is embedded by the embedder rebuilt from index.json
    assert hits[0].path == str(query.resolve()) and hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert idx.embedder().name == "swae" and idx.record["embedder"]["config"]["model"] == result["model"]

    # the CLI takes the trained encoder as NAME:FOLDER
    code, out, err = cli("index", collection, "--index", tmp_path / "idx-cli", "--embedder",
                         f"swae:{result['model']}", "--json")
    assert code == 0, err
    assert json.loads(out)["embedder"] == "swae" and json.loads(out)["images"] == 24
    code, _, err = cli("index", collection, "--index", tmp_path / "idx-bad", "--embedder", "swae:")
    assert code == 7 and "names no model folder" in err

    # resuming a finished run reads its config back, trains no further and prints a summary
    code, out, err = cli("paintings", "train-encoder", "--data", collection, "--kind", "swae", "--out", run,
                         "--resume", "--accelerator", "cpu")
    assert code == 0, err
    assert "swae encoder (6-d codes) saved in" in out and "mAP@10" in out
    code, _, err = cli("paintings", "train-encoder", "--data", collection, "--kind", "swae", "--out", run)
    assert code == 7 and "already holds a run" in err
    code, _, err = cli("paintings", "train-encoder", "--data", collection, "--kind", "vae", "--out", tmp_path / "x")
    assert code == 7 and "dae or swae" in err


def test_folded_batchnorm_features_match_the_plain_backbone() -> None:
    # the encoders read FeatureExtractor features, computed with batch norms folded into the convolutions
    # (a speed-up); they must equal the unfolded backbone's to float rounding, also after its weights change
    from artlens.models.backbones import create_backbone
    from artlens.paintings.features import FeatureExtractor, fold_batchnorm

    torch.manual_seed(0)
    model, prep = create_backbone(TINY, pretrained=False)
    for m in model.modules():  # non-trivial statistics, so that folding matters
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2.0)
    fx = FeatureExtractor(TINY, model=model, preprocess=prep, n_patches=0)
    x = torch.randn(3, 3, 64, 64)
    for _ in range(2):
        with torch.inference_mode():
            maps = model.forward_features(x)
            ref = model.forward_head(maps, pre_logits=True)
        pooled, got_maps = fx.forward_views(x)
        torch.testing.assert_close(pooled, ref, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(got_maps, maps, rtol=1e-4, atol=1e-5)
        with torch.no_grad():
            model.conv_stem.weight.mul_(1.5)  # weights change: the folded copy must follow
    assert fx._folded is not None and type(model.bn1).__name__ == "BatchNormAct2d"  # the original is untouched
    assert fold_batchnorm(torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1), torch.nn.BatchNorm2d(3))) is None


def test_bf16_precision_gives_nearly_the_same_features_and_is_recorded() -> None:
    from artlens.models.backbones import create_backbone
    from artlens.paintings.features import FeatureExtractor

    torch.manual_seed(0)
    model, prep = create_backbone(TINY, pretrained=False)
    fp32 = FeatureExtractor(TINY, model=model, preprocess=prep, n_patches=0)
    bf16 = FeatureExtractor(TINY, model=model, preprocess=prep, n_patches=0, precision="bf16")
    x = torch.randn(4, 3, 64, 64)
    a, _ = fp32.forward_views(x)
    b, maps = bf16.forward_views(x)
    assert b.dtype == torch.float32 and maps.dtype == torch.float32  # callers always get float32
    cos = torch.nn.functional.cosine_similarity(a, b)
    assert cos.min().item() > 0.99 and not torch.equal(a, b)  # bfloat16 rounding, not the same numbers
    assert "precision" not in fp32.config() and bf16.config()["precision"] == "bf16"  # caches keep apart
    with pytest.raises(InvalidParameterError, match="unknown precision"):
        FeatureExtractor(TINY, model=model, preprocess=prep, precision="fp16")
