"""`timm_compound.inherit` from files, folders and Hub repos, `timm-compound inherit`, and the inputs it refuses.

Two resnet18 bases are grown into phi=1 (a training run through the CLI, a Hub repo); every refusal
happens before anything is grown, so the rest costs next to nothing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import safetensors.torch
import timm
import torch
import yaml
from huggingface_hub import CommitOperationAdd, HfApi
from test_inherit import outputs, randomise, relative
from typer.testing import CliRunner

import timm_compound
from timm_compound.cli import app
from timm_compound.errors import CompoundError
from timm_compound.scaling.rulebook import RuleBook, shipped_dir

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


@pytest.fixture(scope="module")
def base():
    torch.manual_seed(0)
    return randomise(timm.create_model("resnet18", num_classes=10))


@pytest.fixture(scope="module")
def probe():
    return torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(7))


@pytest.fixture(scope="module")
def weights(base, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("base") / "resnet18.safetensors"
    safetensors.torch.save_file(base.state_dict(), str(path))
    return path


def saved(state: dict[str, torch.Tensor], folder: Path, name: str = "base.safetensors") -> Path:
    safetensors.torch.save_file({k: v.contiguous() for k, v in state.items()}, str(folder / name))
    return folder / name


# ---------------------------------------------------------------- the command line, a folder, local-dir:


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> tuple[Path, torch.nn.Module]:
    """A training run (one step on 64 digits) of a randomised resnet18, and its best weights as a model."""
    from timm_compound.train.api import train

    torch.manual_seed(1)
    model = randomise(timm.create_model("resnet18_cs_phi0", num_classes=10)).train()
    run = tmp_path_factory.mktemp("run") / "r18"
    train(
        model,
        "builtin:digits",
        epochs=1,
        resolution=32,
        train_samples=64,
        val_samples=32,
        batch_size=64,
        out=run,
        progress=False,
    )
    trained = timm.create_model("resnet18", num_classes=10)
    trained.load_state_dict(safetensors.torch.load_file(str(run / "best.safetensors")))
    return run, trained.eval()


def test_cli_grows_a_run_into_a_folder_that_loads_back_with_the_base_outputs(run_folder, probe, tmp_path):
    run, trained = run_folder
    out = tmp_path / "grown"
    result = runner.invoke(
        app, ["inherit", "resnet18_cs_phi1", "--from", str(run), "--out", str(out)], terminal_width=200
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert (
        f"grew the run {run} (best.safetensors) into resnet18_cs_phi1: 4 new block(s) starting as the identity" in text
    )
    assert f"wrote {out}" in text
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]

    loaded = timm.create_model(f"local-dir:{out}", pretrained=True)  # timm's own loader, our folder
    scaled = json.loads((out / "config.json").read_text())["compound_plan"]
    assert scaled["phi"] == 1 and [len(loaded.layer1), len(loaded.layer4)] == [scaled["depths"][0], scaled["depths"][3]]
    assert loaded.num_classes == 10 and relative(outputs(loaded, probe), outputs(trained, probe)) < 1e-4

    # the folder is a base in its turn, with its own plan (phi=1 grown further is test_inherit's
    # test_a_scaled_model_grows_further, the same path once the folder is read): kept at phi=1, it is unchanged
    again = timm_compound.inherit(f"local-dir:{out}", "resnet18_cs_phi1", seed=1)
    assert again.inherit_report.source == f"the folder {out}" and again.inherit_report.new_blocks == []
    assert all(torch.equal(value, loaded.state_dict()[key]) for key, value in again.state_dict().items())
    # a plain path reads the same folder (and its plan: phi=1 cannot grow into phi=0)
    with pytest.raises(
        CompoundError,
        match=re.escape(
            "resnet18 at phi=0 has 2 blocks in stage 1 of 4 where its base has 3: inheritance only grows a model"
        ),
    ):
        timm_compound.inherit(str(out), "resnet18_cs_phi0")


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["resnet18_cs_phi1", "--from", "{tmp}/w.pth"],
            "w.pth: .pth files are pickles; timm-compound loads weights only from .safetensors and never unpickles",
        ),
        (
            ["resnet18", "--phi", "-1", "--from", "{weights}"],
            "resnet18 at phi=-1 is smaller than its base: inheritance only grows a model",
        ),
        (
            ["resnet18_cs_phi1", "--phi", "2", "--from", "{weights}"],
            "resnet18_cs_phi1 is registered at phi=1; give its base to choose --phi",
        ),
        (["densenet121_cs_phi1", "--from", "{weights}"], "rule densenet.yaml (densenet) has no `inherit` field"),
        (["resnet18_cs_phi1", "--from", "{tmp}/nothing"], "nothing: no such file or folder"),
    ],
)
def test_cli_errors_are_one_line(args, message, weights, tmp_path):
    torch.save({"x": torch.zeros(1)}, tmp_path / "w.pth")
    args = [a.format(tmp=tmp_path, weights=weights) for a in args]
    result = runner.invoke(app, ["inherit", *args, "--out", str(tmp_path / "out")], terminal_width=400)
    assert result.exit_code == 1, result.output
    assert "error: " in result.output and message in " ".join(result.output.split())
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


# ---------------------------------------------------------------- the Hub


def upload(files: dict[str, bytes], label: str) -> str:
    repo = f"org/inherit-{label}"
    api = HfApi()
    api.create_repo(repo, exist_ok=True)
    api.create_commit(repo, [CommitOperationAdd(k, v) for k, v in files.items()], commit_message=label)
    return repo


def test_grows_from_a_timm_format_hub_repo(hub, base, weights, probe):
    config = {"architecture": "resnet18", "num_classes": 10, "pretrained_cfg": {"input_size": [3, 224, 224]}}
    repo = upload({"config.json": json.dumps(config).encode(), "model.safetensors": weights.read_bytes()}, "timm")
    grown = timm_compound.inherit(f"hf-hub:{repo}", "resnet18_cs_phi1")
    assert grown.inherit_report.source == f"resnet18 weights from {repo}" and grown.num_classes == 10
    assert relative(outputs(grown, probe), outputs(base, probe)) < 1e-4


def test_hub_repos_that_cannot_be_a_base_are_refused(hub, weights):
    pickled = upload(
        {"config.json": b'{"architecture": "resnet18", "num_classes": 10}', "pytorch_model.bin": b"never unpickled"},
        "pickle",
    )
    with pytest.raises(
        CompoundError,
        match=re.escape(
            f"{pickled} holds only pickled weights (pytorch_model.bin); "
            "timm-compound loads model.safetensors only and never unpickles"
        ),
    ):
        timm_compound.inherit(pickled, "resnet18_cs_phi1")  # the bare org/name spelling
    other = upload(
        {"config.json": b'{"architecture": "resnet34", "num_classes": 10}', "model.safetensors": weights.read_bytes()},
        "other",
    )
    with pytest.raises(CompoundError, match=f"{other} holds 'resnet34', not resnet18"):
        timm_compound.inherit(f"hf-hub:{other}", "resnet18_cs_phi1")
    with pytest.raises(CompoundError, match="cannot load org/inherit-absent from the Hub"):
        timm_compound.inherit("hf-hub:org/inherit-absent", "resnet18_cs_phi1")


# ---------------------------------------------------------------- weights that are not the base's


def test_weights_that_do_not_match_name_the_first_mismatching_tensor(base, tmp_path):
    state = dict(base.state_dict())
    state["layer2.0.conv1.weight"] = torch.zeros(128, 32, 3, 3)  # the first that differs, in model order
    state["layer3.1.bn2.weight"] = torch.zeros(7)
    path = saved(state, tmp_path)
    with pytest.raises(
        CompoundError,
        match=re.escape(
            f"{path}: the tensors do not match the base resnet18 with 10 classes: shape mismatch: "
            "layer2.0.conv1.weight (128, 32, 3, 3) != (128, 64, 3, 3), layer3.1.bn2.weight (7,) != (256,)"
        ),
    ):
        timm_compound.inherit(path, "resnet18_cs_phi1")
    del state["layer2.0.conv1.weight"], state["layer3.1.bn2.weight"]
    with pytest.raises(CompoundError, match="missing: layer2.0.conv1.weight, layer3.1.bn2.weight"):
        timm_compound.inherit(saved(state, tmp_path), "resnet18_cs_phi1")

    wrong = timm.create_model("resnet18", num_classes=10)
    wrong.layer1[1].conv2 = torch.nn.Conv2d(64, 64, 1, bias=False)
    with pytest.raises(
        CompoundError,
        match=re.escape(
            "the base model: the tensors do not match resnet18 with 10 "
            "classes: shape mismatch: layer1.1.conv2.weight (64, 64, 1, 1) "
            "!= (64, 64, 3, 3)"
        ),
    ):
        timm_compound.inherit(wrong, "resnet18_cs_phi1")
    with pytest.raises(
        CompoundError, match="the tensors do not match resnet18 with 1000 classes: unexpected: layer1.2"
    ):
        timm_compound.inherit(timm.create_model("resnet34"), "resnet18_cs_phi1")  # another architecture


@pytest.mark.parametrize("suffix", [".pth", ".bin", ".pt", ".ckpt", ".pkl"])
def test_pickle_files_are_refused_unopened(suffix, tmp_path):
    path = tmp_path / f"weights{suffix}"
    path.write_bytes(b"not even a pickle: it is never opened")
    with pytest.raises(
        CompoundError,
        match=re.escape(
            f"{path}: {suffix} files are pickles; timm-compound loads "
            "weights only from .safetensors and never unpickles"
        ),
    ):
        timm_compound.inherit(path, "resnet18_cs_phi1")


def test_files_that_are_not_safetensors_are_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(CompoundError, match="notes.txt is not a .safetensors file"):
        timm_compound.inherit(tmp_path / "notes.txt", "resnet18_cs_phi1")
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(CompoundError, match="junk.safetensors is not a valid safetensors file"):
        timm_compound.inherit(tmp_path / "junk.safetensors", "resnet18_cs_phi1")
    with pytest.raises(CompoundError, match="cannot grow from int: give a model, a .safetensors file"):
        timm_compound.inherit(3, "resnet18_cs_phi1")


# ---------------------------------------------------------------- plans and options that cannot be grown


@pytest.mark.parametrize(
    "target, message",
    [
        (
            lambda: timm_compound.plan("resnet18", phi=-1),
            "resnet18 at phi=-1 is smaller than its base: inheritance only grows a model (phi >= 0)",
        ),
        (
            lambda: timm_compound.plan("resnet18", d=0.5),
            "has 1 blocks in stage 1 of 4 where its base has 2: inheritance only grows a model",
        ),
        (lambda: timm_compound.plan("resnet18", w=0.5), "has 32 channels in stage 1 of 4 where its base has 64"),
        (lambda: "resnet18", "resnet18 is a base: give a registered variant (resnet18_cs_phi1)"),
        (lambda: 1.0, "cannot grow into float"),
    ],
)
def test_plans_that_shrink_are_refused(base, target, message):
    with pytest.raises(CompoundError, match=re.escape(message)):
        timm_compound.inherit(base, target())


@pytest.mark.parametrize(
    "options, message",
    [
        ({"noise": -0.1}, "noise must be a finite number >= 0, got -0.1"),
        ({"noise": float("nan")}, "noise must be a finite number >= 0"),
        ({"seed": 1.5}, "seed must be an int, got 1.5"),
        ({"pretrained": True}, "inherit: pretrained=True is not possible"),
        ({"features_only": True}, "inherit: features_only=True is not possible"),
        ({"num_classes": 3}, "num_classes=3, but the base's classifier has 10 classes and is inherited"),
    ],
)
def test_options_that_cannot_work_are_refused(base, options, message):
    with pytest.raises(CompoundError, match=re.escape(message)):
        timm_compound.inherit(base, "resnet18_cs_phi1", **options)


def shipped_rules() -> dict[str, dict]:
    return {path.name: yaml.safe_load(path.read_text()) for path in sorted(shipped_dir("rules").glob("*.yaml"))}


CANNOT_INHERIT = sorted(name for name, rule in shipped_rules().items() if "inherit" not in rule)


@pytest.mark.parametrize("file", CANNOT_INHERIT)
def test_a_family_without_inherit_in_its_rule_is_refused(file):
    rule = shipped_rules()[file]
    target = timm_compound.plan(rule["architectures"][0], phi=1)
    with pytest.raises(
        CompoundError,
        match=re.escape(
            f"rule {file} ({rule['family']}) has no `inherit` field, so its new blocks have no identity "
            "initialisation: this family cannot inherit its base's weights"
        ),
    ):
        timm_compound.inherit("never-read.safetensors", target)  # refused before the source is opened


def test_the_inherit_guide_names_exactly_the_families_that_cannot_inherit():
    assert CANNOT_INHERIT == [
        "densenet.yaml",
        "efficientvit.yaml",
        "ghostnet.yaml",
        "mobilenetv1.yaml",
        "mobilenetv3.yaml",
        "mobileone.yaml",
        "nfnet.yaml",
        "repghost.yaml",
        "selecsls.yaml",
        "vgg.yaml",
        "vovnet.yaml",
        "xception.yaml",
    ]
    section = (ROOT / "docs" / "inherit.md").read_text()
    for file in CANNOT_INHERIT:
        for line in section.splitlines():
            if f"`{file}`" in line:
                break
        else:
            raise AssertionError(f"docs/inherit.md does not say why {file} cannot inherit")
    for file, rule in shipped_rules().items():
        if file not in CANNOT_INHERIT:
            assert rule["family"] in section, f"docs/inherit.md does not list {rule['family']}"


def test_resolution_dependent_parameters_are_refused_when_the_resolution_changes(base, tmp_path):
    """A rule names the parameters that depend on the input size; a plan that changes it is refused."""
    text = (shipped_dir("rules") / "resnet.yaml").read_text()
    marked = text.replace("  identity: [bn3, bn2]\n", "  identity: [bn3, bn2]\n  resolution_params: [fc.weight]\n")
    assert marked != text  # fc.weight stands in for a position embedding
    (tmp_path / "resnet.yaml").write_text(marked)
    rules = RuleBook.from_dir(tmp_path)
    with pytest.raises(
        CompoundError,
        match=re.escape(
            "fc.weight depends on the input resolution (rule resnet.yaml: inherit.resolution_params) and "
            "inheritance cannot resize it: plan resnet18 at the base's resolution (224 px, resolution=...)"
        ),
    ):
        timm_compound.inherit(base, timm_compound.plan("resnet18", phi=1, rules=rules))
