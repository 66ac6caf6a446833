"""timm's own `hf-hub:` and `local-dir:` doors run the checks `from_hub` runs (one `published_config`),
against the test Hub (tests/hub_server.py, the real huggingface_hub client): tampered repos are refused
with the repo and the field named, good ones load through the plan entrypoint, and configs timm-compound
did not publish are left to timm."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import safetensors.torch
import timm
import torch
from huggingface_hub import CommitOperationAdd, HfApi

import timm_compound as tc
from timm_compound.errors import CompoundError
from timm_compound.hub.config import PLAN_ENTRYPOINT
from timm_compound.hub.load import published_config

INPUT = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))


def _outputs(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(INPUT)


def _upload(files: dict[str, bytes]) -> str:
    repo = f"org/loading-{uuid.uuid4().hex[:8]}"
    api = HfApi()
    api.create_repo(repo)
    api.create_commit(repo, [CommitOperationAdd(name, data) for name, data in files.items()], commit_message="crafted")
    return repo


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A published ResNet-style folder (config.json names plain timm's resnet18 with JSON model_args)."""
    torch.manual_seed(0)
    model = timm.create_model("resnet18_cs_phi0", num_classes=3)
    path = tc.save_to_dir(model, tmp_path_factory.mktemp("published") / "resnet")
    assert json.loads((path / "config.json").read_text())["architecture"] == "resnet18"
    return path


def _files(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in ("config.json", "model.safetensors")}


def _config_with(folder: Path, change) -> bytes:
    config = json.loads((folder / "config.json").read_text())
    change(config)
    return json.dumps(config).encode()


def _integer_weights(folder: Path, tmp_path: Path) -> bytes:
    state = safetensors.torch.load_file(str(folder / "model.safetensors"))
    safetensors.torch.save_file(
        {k: v.to(torch.int64) if v.is_floating_point() else v for k, v in state.items()},
        str(tmp_path / "int.safetensors"),
    )
    return (tmp_path / "int.safetensors").read_bytes()


def test_a_plain_timm_layout_repo_loads_through_the_plan_entrypoint(folder, hub):
    """With timm_compound imported, timm.create_model("hf-hub:...") of a ResNet-style repo is built and checked
    by the plugin: the same weights and outputs as the published model, and the plan attached."""
    repo = _upload(_files(folder))
    reference = tc.from_dir(folder)
    loaded = timm.create_model(f"hf-hub:{repo}", pretrained=True)
    assert type(loaded).__name__ == "ResNet" and loaded.compound_plan == reference.compound_plan
    assert torch.equal(_outputs(loaded), _outputs(reference))
    structure = timm.create_model(f"hf-hub:{repo}")  # no weights: built from the checked plan
    assert structure.compound_plan == reference.compound_plan
    assert {k: v.shape for k, v in structure.state_dict().items()} == {
        k: v.shape for k, v in loaded.state_dict().items()
    }
    assert published_config("hf-hub", repo).timm_config()[1] == PLAN_ENTRYPOINT


@pytest.mark.parametrize(
    "case",
    ["config-not-json", "widths-doubled", "architecture-swapped", "integer-weights", "header-too-large", "no-config"],
)
def test_a_tampered_hub_repo_is_refused_through_timms_door(case, folder, hub, tmp_path):
    files = _files(folder)
    message = {
        "config-not-json": "config.json is not readable JSON",
        "widths-doubled": "widths = [128, 256, 512, 1024] is not what its own rule gives",
        "architecture-swapped": "architecture 'resnet34' is neither",
        "integer-weights": "conv1.weight is I64 where the model holds torch.float32",
        "header-too-large": "model.safetensors",
        "no-config": "has no config.json: not a timm model repo",
    }[case]
    if case == "config-not-json":
        files["config.json"] = b"{not json"
    elif case == "widths-doubled":
        files["config.json"] = _config_with(
            folder, lambda c: c["compound_plan"].update(widths=[2 * w for w in c["compound_plan"]["widths"]])
        )
    elif case == "architecture-swapped":
        files["config.json"] = _config_with(folder, lambda c: c.update(architecture="resnet34"))
    elif case == "integer-weights":
        files["model.safetensors"] = _integer_weights(folder, tmp_path)
    elif case == "header-too-large":
        files["model.safetensors"] = (2**40).to_bytes(8, "little") + b"{}"
    else:
        del files["config.json"]
    repo = _upload(files)
    with pytest.raises(CompoundError) as caught:
        timm.create_model(f"hf-hub:{repo}", pretrained=True)
    assert repo in str(caught.value) and message in str(caught.value), str(caught.value)
    with pytest.raises(CompoundError, match=message.split("(")[0].replace(".", r"\.").replace("[", r"\[")):
        tc.from_hub(repo)


def test_a_revision_against_gits_rules_is_refused_before_any_request():
    """No test Hub runs here: a request would fail with 'cannot load ... from the Hub', not these."""
    with pytest.raises(CompoundError, match=r"revision '\.\./\.\./x' is not a valid branch"):
        timm.create_model("hf-hub:org/name@../../x")
    with pytest.raises(CompoundError, match=r"'\.\./\.\./etc' is not a Hub repo id"):
        tc.from_hub("../../etc")


def test_a_config_timm_compound_did_not_publish_is_left_to_timm(tmp_path):
    """A plain timm folder (no compound_plan) loads exactly as timm alone loads it."""
    torch.manual_seed(0)
    model = timm.create_model("resnet10t", num_classes=4)
    folder = tmp_path / "plain"
    folder.mkdir()
    timm.models.save_for_hf(model, str(folder), safe_serialization=True)
    assert published_config("local-dir", str(folder)) is None
    loaded = timm.create_model(f"local-dir:{folder}", pretrained=True)
    assert not hasattr(loaded, "compound_plan") and torch.equal(_outputs(loaded), _outputs(model))
    with pytest.raises(CompoundError, match="config.json has no compound_plan: not published by timm-compound"):
        tc.from_dir(folder)
