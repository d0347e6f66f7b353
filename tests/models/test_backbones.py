"""Offline Lite0 / Lite2 weights: each package's state dict maps onto timm's tf_efficientnet_lite0 / lite2.

The reference below is an independent forward pass written with torch.nn.functional over the
package's own tensor names (EfficientNet-PyTorch naming: ``_conv_stem``, ``_blocks.N._expand_conv``,
...), with TensorFlow "SAME" padding and BatchNorm eps 1e-3 as in the original Lite0. If the
in-order mapping paired the wrong tensors (e.g. a BatchNorm weight with a bias of the same shape),
the logits would differ.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from artlens.errors import InvalidParameterError, NetworkError  # noqa: E402
from artlens.models.backbones import LITE0, create_backbone, offline_checksum, offline_weights_path  # noqa: E402

# (expand ratio, kernel, stride, repeats) of EfficientNet-Lite0's seven stages (Tan & Le 2019).
_STAGES = [(1, 3, 1, 1), (6, 3, 2, 2), (6, 5, 2, 2), (6, 3, 2, 3), (6, 5, 1, 3), (6, 5, 2, 4), (6, 3, 1, 1)]
# Lite2 scales depth by 1.2 (rounded up), keeping the first and last stages at one block.
_STAGES_LITE2 = [(1, 3, 1, 1), (6, 3, 2, 3), (6, 5, 2, 3), (6, 3, 2, 4), (6, 5, 1, 4), (6, 5, 2, 5), (6, 3, 1, 1)]


def _same_pad(x, k: int, s: int):
    h, w = x.shape[-2:]
    ph = max((-(-h // s) - 1) * s + k - h, 0)
    pw = max((-(-w // s) - 1) * s + k - w, 0)
    return F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])


def _bn(x, sd, name):
    return F.batch_norm(x, sd[f"{name}.running_mean"], sd[f"{name}.running_var"], sd[f"{name}.weight"],
                        sd[f"{name}.bias"], training=False, eps=1e-3)


def _reference_logits(sd, x, stages=_STAGES):
    x = F.relu6(_bn(F.conv2d(_same_pad(x, 3, 2), sd["_conv_stem.weight"], stride=2), sd, "_bn0"))
    b = 0
    for expand, k, s, repeats in stages:
        for r in range(repeats):
            stride = s if r == 0 else 1
            p = f"_blocks.{b}"
            inp = x
            if expand != 1:
                x = F.relu6(_bn(F.conv2d(x, sd[f"{p}._expand_conv.weight"]), sd, f"{p}._bn0"))
            dw = sd[f"{p}._depthwise_conv.weight"]
            x = F.conv2d(_same_pad(x, k, stride), dw, stride=stride, groups=dw.shape[0])
            x = F.relu6(_bn(x, sd, f"{p}._bn1"))
            x = _bn(F.conv2d(x, sd[f"{p}._project_conv.weight"]), sd, f"{p}._bn2")
            if stride == 1 and inp.shape == x.shape:
                x = x + inp
            b += 1
    x = F.relu6(_bn(F.conv2d(x, sd["_conv_head.weight"]), sd, "_bn1"))
    return F.linear(x.mean(dim=(2, 3)), sd["_fc.weight"], sd["_fc.bias"])


def test_lite0_state_dict_maps_strictly_and_logits_match_reference():
    sd = torch.load(offline_weights_path(LITE0), map_location="cpu", weights_only=True)
    assert len(sd) == 296
    model, prep = create_backbone(LITE0, num_classes=1000)  # strict load inside
    assert prep.mean == prep.std == (0.5, 0.5, 0.5)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 224, 224, generator=g) * 2 - 1  # already normalised to [-1, 1]
    with torch.no_grad():
        ours = model(x)
        ref = _reference_logits(sd, x)
    assert ours.shape == (2, 1000)
    assert torch.allclose(ours, ref, atol=2e-3, rtol=1e-3), (ours - ref).abs().max()
    assert torch.equal(ours.argmax(1), ref.argmax(1))


def test_lite2_state_dict_maps_strictly_and_logits_match_reference():
    sd = torch.load(offline_weights_path("tf_efficientnet_lite2"), map_location="cpu", weights_only=True)
    assert len(sd) == 386
    model, prep = create_backbone("tf_efficientnet_lite2", num_classes=1000)
    assert prep.mean == prep.std == (0.5, 0.5, 0.5) and prep.input_size == 260
    x = torch.rand(1, 3, 260, 260, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        ours, ref = model(x), _reference_logits(sd, x, _STAGES_LITE2)
    assert torch.allclose(ours, ref, atol=2e-3, rtol=1e-3), (ours - ref).abs().max()
    assert len(offline_checksum("tf_efficientnet_lite2")) == 64
    assert offline_checksum("tf_efficientnet_lite2") != offline_checksum(LITE0)


def test_offline_weights_of_an_unlisted_name_fail_clearly():
    with pytest.raises(InvalidParameterError, match="no offline weights"):
        offline_weights_path("resnet18")


def test_feature_extractor_has_no_head_and_checksum_is_stable():
    model, _ = create_backbone(LITE0)
    with torch.no_grad():
        f = model(torch.zeros(1, 3, 224, 224))
    assert f.shape == (1, 1280)
    assert len(offline_checksum(LITE0)) == 64


def test_unknown_name_lists_similar_ones():
    with pytest.raises(InvalidParameterError, match="unknown timm model"):
        create_backbone("resnet_that_does_not_exist_999")


def test_other_backbones_fail_clearly_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(NetworkError, match="checkpoint=PATH"):
        create_backbone("resnet18", pretrained=True)


def test_local_safetensors_checkpoint_for_any_timm_name(tmp_path):
    from safetensors.torch import save_file

    src, _ = create_backbone("resnet10t", pretrained=False)
    path = tmp_path / "r10.safetensors"
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(path))
    loaded, prep = create_backbone("resnet10t", checkpoint=path)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(src(x), loaded(x))
    assert prep.input_size == 176  # resnet10t's own pretrained config
    with pytest.raises(InvalidParameterError, match="safetensors"):
        create_backbone("resnet10t", checkpoint=tmp_path / "x.pth")
