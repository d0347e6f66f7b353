"""Shipped weights as named tags (artlens.models.pretrained) and models/ as a leaf package."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from artlens.errors import InputNotFoundError, InvalidParameterError
from artlens.models import create_model, list_pretrained, load_checkpoint, pretrained_path
from artlens.models.pretrained import default_tag, pretrained_info, resolve_model_folder

MODELS = Path(__file__).parents[2] / "src" / "artlens" / "models"
DOMAINS = ("canvas", "paintings", "beneath", "train", "cli", "web", "catalog", "report", "engine", "demo")


def test_models_imports_no_domain_package():
    bad = []
    for path in sorted(MODELS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            bad += [f"{path.name}: {n}" for n in names if n.split(".")[:2][-1] in DOMAINS and n.startswith("artlens.")]
    assert not bad, f"models/ must stay a leaf: {bad}"


def test_create_model_loads_no_domain_code():
    code = ("import sys; from artlens.models import create_model, list_models; create_model('regvgg_test'); "
            "list_models(); create_model('beneath_gcn_test'); print(' '.join(sorted(sys.modules)))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    domain = [m for m in loaded if m.startswith(tuple(f"artlens.{d}" for d in DOMAINS))]
    assert not domain, domain
    assert not [m for m in loaded if m.startswith(("skimage", "lightning"))]


def test_every_tag_resolves_to_its_package_folder():
    names = list_pretrained()
    assert names == ["beneath_gat.beneath_default", "beneath_gcn.beneath_gcn_default",
                     "painting_verifier.verifier_default", "regvgg_small.threads_regvgg",
                     "siamese_fabric.siamese_v1", "weavephase.threads_phase", "yarn_logistic.fabric_default"]
    for name in names:
        folder = pretrained_path(name)
        entry = pretrained_info(name)
        assert folder.name == entry.tag and (folder / entry.weights).is_file() and (folder / "MODEL_CARD.md").is_file()
        assert folder.as_posix().endswith("artlens/" + entry.folder)
        assert json.loads((folder / "config.json").read_text())["model"] == entry.architecture
        assert pretrained_path(entry.tag) == folder  # the bare tag (folder name) names it too
    assert list_pretrained(family="fabric") == ["siamese_fabric.siamese_v1", "yarn_logistic.fabric_default"]


def test_unknown_tags_fail_with_the_valid_ones():
    with pytest.raises(InvalidParameterError, match=r"valid tags: .*weavephase\.threads_phase"):
        pretrained_path("weavephase.threads_default")
    with pytest.raises(InvalidParameterError, match="valid tags"):
        create_model("regvgg_small.nope", pretrained=True)
    with pytest.raises(InvalidParameterError, match="no pretrained weights are shipped for 'regvgg_test'"):
        create_model("regvgg_test", pretrained=True)
    with pytest.raises(InvalidParameterError, match="load_verifier"):
        create_model("painting_verifier.verifier_default", pretrained=True)
    with pytest.raises(InvalidParameterError, match="fix the architecture"):
        create_model("weavephase.threads_phase", pretrained=True, input_size=64)
    with pytest.raises(InvalidParameterError, match="not both"):
        create_model("weavephase", pretrained=True, checkpoint="x")


@pytest.mark.parametrize("name", [n for n in list_pretrained() if not n.startswith("painting_verifier")])
def test_create_model_pretrained_loads_the_shipped_weights(name):
    model = create_model(name, pretrained=True)
    reference, _ = load_checkpoint(pretrained_path(name))
    assert not model.training
    for (k, a), b in zip(model.state_dict().items(), reference.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    arch = name.split(".")[0]
    assert default_tag(arch) == name  # one tag per architecture today, so the bare name loads it too
    assert type(create_model(arch, pretrained=True)) is type(model)


def test_a_tag_without_pretrained_builds_fresh_weights():
    assert type(create_model("weavephase.threads_phase")).__name__ == "WeavePhaseNet"


def test_resolve_model_folder(tmp_path):
    assert resolve_model_folder(tmp_path) == tmp_path  # an existing path wins
    assert resolve_model_folder("siamese_v1") == pretrained_path("siamese_fabric.siamese_v1")
    with pytest.raises(InputNotFoundError, match=r"no such fabric model folder \(shipped models: siamese_fabric"):
        resolve_model_folder(tmp_path / "nothing", what="fabric model", family="fabric")
