"""Publishing to a real (local) Hub-compatible HTTP server and loading back with timm.

tests/hub_server.py is driven by the real huggingface_hub client and by timm's own loader; the
loads that must work "on the receiving side" run in fresh Python processes.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import sys
import textwrap
import uuid
from dataclasses import fields
from pathlib import Path

import pytest
import safetensors.torch
import timm
import torch
import yaml
from huggingface_hub import HfApi

import timm_compound
import timm_compound as tc_hub
from timm_compound.cost.measure import measure
from timm_compound.errors import CompoundError
from timm_compound.hub.config import PLAN_ENTRYPOINT
from timm_compound.scaling.rulebook import RuleBook, shipped_rules

X = torch.Generator().manual_seed(0)
INPUT = torch.randn(2, 3, 64, 64, generator=X)


def repo_name(label: str) -> str:
    return f"org/{label}-{uuid.uuid4().hex[:8]}"


def state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def outputs(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(INPUT)


def run_fresh(code: str, tmp_path: Path) -> None:
    """Run `code` in a new interpreter (same HF_* environment: it reaches the test Hub)."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=tmp_path,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def custom_rule_plan():
    """A plan under a rule the receiver does not have: resnet widths rounded to 16, not 8."""
    rule, _ = shipped_rules().rule_for("resnet18")
    custom = rule.model_copy(update={"family": "resnet_by16", "width": rule.width.model_copy(update={"divisor": 16})})
    book = RuleBook()
    book.add(custom, Path("resnet_by16.yaml"))
    return timm_compound.plan("resnet18", d=0.5, w=0.6, r=0.75, rules=book)


@pytest.fixture(scope="module")
def published(hub_server):
    """Four publishes: a registered variant twice (two commits), a custom-rule ResNet plan
    (uploaded as regular files), and an unregistered phi with custom coefficients."""
    torch.manual_seed(0)
    out = {}
    first = timm.create_model("mobilenetv1_100_cs_phi1", num_classes=10)
    second = timm.create_model("mobilenetv1_100_cs_phi1", num_classes=10)
    repo = repo_name("mnv1-phi1")
    out["first"] = (repo, tc_hub.publish(first, repo), first)
    out["registered"] = (repo, tc_hub.publish(second, repo), second)

    hub_server.lfs_suffixes = ()  # every file "regular": inline base64 in the commit
    resnet = timm_compound.build(custom_rule_plan(), num_classes=10)
    repo = repo_name("resnet-by16")
    out["custom_rule"] = (repo, tc_hub.publish(resnet, repo), resnet)
    hub_server.lfs_suffixes = (".safetensors", ".bin")

    coefficients = timm_compound.plan("mobilenetv1_100", -1, coefficients=(1.3, 1.08, 1.13))
    mnv1 = timm_compound.build(coefficients, num_classes=7)
    repo = repo_name("mnv1-coef")
    out["coefficients"] = (repo, tc_hub.publish(mnv1, repo), mnv1)
    return out


# ------------------------------------------------------------------ what a publish writes


def test_one_commit_per_publish_with_exactly_the_three_files(published, hub):
    repo, sha, _ = published["registered"]
    first_sha = published["first"][1]
    assert hub.history(repo) == [sha, first_sha, hub.history(repo)[-1]]  # create + two publishes
    assert sorted(hub.files(repo)) == [".gitattributes", "README.md", "config.json", "model.safetensors"]
    entries = hub.repos[repo].commits[sha].files
    assert entries["model.safetensors"].lfs is True and entries["config.json"].lfs is False
    custom_repo, custom_sha, _ = published["custom_rule"]
    assert hub.repos[custom_repo].commits[custom_sha].files["model.safetensors"].lfs is False


def test_config_is_timm_format_plus_the_whole_plan(published, hub):
    repo, sha, model = published["registered"]
    config = json.loads(hub.files(repo, sha)["config.json"])
    assert config["architecture"] == PLAN_ENTRYPOINT
    assert config["num_classes"] == 10
    assert config["num_features"] == model.num_features == 1128
    assert config["model_args"] == {"compound_plan": model.compound_plan.to_dict(), "num_classes": 10}
    assert config["compound_plan"] == model.compound_plan.to_dict()
    assert config["compound_plan"]["phi"] == 1.0 and config["compound_plan"]["resolution"] == 256
    cfg = config["pretrained_cfg"]
    assert cfg["input_size"] == [3, 256, 256] and cfg["num_classes"] == 10
    assert set(cfg) <= {f.name for f in fields(timm.models.PretrainedCfg)}
    assert not {"hf_hub_id", "file", "url", "source", "architecture"} & set(cfg)
    assert config["timm_compound"] == {
        "version": timm_compound.__version__,
        "timm_version": timm.__version__,
        "torch_version": torch.__version__.split("+")[0],
        "name": "mobilenetv1_100_cs_phi1",
        "plain_timm_loadable": False,
    }


def test_resnet_layout_is_published_for_plain_timm(published, hub):
    repo, sha, model = published["custom_rule"]
    config = json.loads(hub.files(repo, sha)["config.json"])
    assert model.compound_plan.widths == [48, 80, 160, 304]  # divisor 16; the shipped rule gives [40, 80, 152, 304]
    assert config["architecture"] == "resnet18"
    assert config["model_args"] == {"channels": [48, 80, 160, 304], "layers": [1, 1, 1, 1], "num_classes": 10}
    assert config["compound_plan"]["rule"]["width"]["divisor"] == 16
    assert config["compound_plan"]["rule_file"] == "resnet_by16.yaml"
    assert config["timm_compound"]["plain_timm_loadable"] is True


def test_model_card(published, hub):
    repo, sha, model = published["registered"]
    card = hub.files(repo, sha)["README.md"].decode()
    front = yaml.safe_load(card.split("---\n")[1])
    assert front == {
        "library_name": "timm",
        "license": "apache-2.0",
        "tags": ["image-classification", "timm", "timm-compound", "compound-scaling", "mobilenetv1"],
    }
    params = sum(p.numel() for p in model.parameters())
    assert f"| parameters | {params:,} |" in card
    assert "| blocks per stage | 1, 2, 2, 6, 2 → 2, 3, 3, 8, 3 |" in card
    assert "| input size | 224 → 256 (rounded) |" in card
    assert f"| GMACs at 256×256 | {measure(model).gmacs:.3f} |" in card
    assert f'timm.create_model("hf-hub:{repo}", pretrained=True)' in card
    assert "Plain timm cannot build this model" in card
    custom_card = hub.files(*published["custom_rule"][:2])["README.md"].decode()
    assert "Plain timm loads this model too" in custom_card


# ------------------------------------------------------------------ loading back, elsewhere


def test_round_trip_in_a_fresh_process(published, hub, tmp_path):
    """One new interpreter: first plain timm (no plugin imported) loads the ResNet-layout repo, then the
    coefficients repo's card snippet runs verbatim, then `import timm_compound` and timm load all four."""
    safetensors.torch.save_file({"x": INPUT}, str(tmp_path / "input.safetensors"))
    card = hub.files(*published["coefficients"][:2])["README.md"].decode()
    snippet = re.search(r"```python\n(.*?)```", card, re.S).group(1)
    loads = {
        "registered": f"hf-hub:{published['registered'][0]}",
        "first": f"hf-hub:{published['first'][0]}@{published['first'][1]}",
        "custom_rule": f"hf-hub:{published['custom_rule'][0]}",
        "coefficients": f"hf-hub:{published['coefficients'][0]}",
    }
    run_fresh(
        f"""
        import json, sys, safetensors.torch, torch, timm
        x = safetensors.torch.load_file("input.safetensors")["x"]

        plain = timm.create_model({loads["custom_rule"]!r}, pretrained=True).eval()
        assert not any(m.startswith("timm_compound") for m in sys.modules), "plain timm only"
        assert type(plain).__name__ == "ResNet"
        with torch.no_grad():
            safetensors.torch.save_file({{"__out__": plain(x)}}, "plain.safetensors")

        exec(compile({snippet!r}, "README.md", "exec"))
        assert tuple(config["input_size"]) == (3, 200, 200) and tuple(logits.shape) == (1, 7), (config, logits.shape)

        import timm_compound
        sizes = {{}}
        for key, name in {loads!r}.items():
            model = timm.create_model(name, pretrained=True).eval()
            with torch.no_grad():
                out = model(x)
            sd = {{k: v.contiguous() for k, v in model.state_dict().items()}}
            safetensors.torch.save_file({{**sd, "__out__": out}}, key + ".safetensors")
            sizes[key] = list(timm.data.resolve_model_data_config(model)["input_size"])
        json.dump(sizes, open("sizes.json", "w"))
    """,
        tmp_path,
    )
    sizes = json.loads((tmp_path / "sizes.json").read_text())
    for key in loads:
        model = published[key][2]
        loaded = safetensors.torch.load_file(str(tmp_path / f"{key}.safetensors"))
        out = loaded.pop("__out__")
        expected = state(model)
        assert loaded.keys() == expected.keys(), key
        assert all(torch.equal(loaded[k], expected[k]) for k in expected), key
        assert torch.equal(out, outputs(model)), key
        assert sizes[key] == [3, model.compound_plan.resolution, model.compound_plan.resolution], key
    assert sizes["custom_rule"] == [3, 168, 168] and sizes["coefficients"] == [3, 200, 200]
    assert not torch.equal(published["first"][2].conv_stem.weight, published["registered"][2].conv_stem.weight)
    plain_out = safetensors.torch.load_file(str(tmp_path / "plain.safetensors"))["__out__"]
    assert torch.equal(plain_out, outputs(published["custom_rule"][2]))


def test_from_hub_attaches_the_plan_and_pins_revisions(published):
    repo, first_sha, first = published["first"]
    model = tc_hub.from_hub(repo, revision=first_sha)
    assert model.compound_plan == first.compound_plan
    assert torch.equal(outputs(model), outputs(first))
    latest = tc_hub.from_hub(repo)
    assert torch.equal(outputs(latest), outputs(published["registered"][2]))
    resnet_repo, _, resnet = published["custom_rule"]
    plain = tc_hub.from_hub(resnet_repo)
    assert type(plain).__name__ == "ResNet" and plain.compound_plan == resnet.compound_plan
    assert tc_hub.from_hub(resnet_repo, num_classes=3).fc.out_features == 3  # timm's classifier reset still works


def test_registered_name_with_a_hub_id_downloads_its_weights(published, tmp_path):
    repo, _, model = published["registered"]
    (variant,) = register(tmp_path, repo)
    loaded = timm.create_model(variant.name, pretrained=True)
    assert loaded.num_classes == 10  # the published head, from the repo's config
    assert torch.equal(outputs(loaded), outputs(model))
    assert loaded.pretrained_cfg["hf_hub_id"] == repo and loaded.pretrained_cfg.get("file") is None


def register(tmp_path: Path, repo: str):
    """Register mobilenetv1_100 phi=1 under a fresh name, its weights at `repo`."""
    name = f"t{uuid.uuid4().hex[:8]}_{{base}}_phi{{phi}}"
    path = tmp_path / f"{uuid.uuid4().hex[:8]}.yaml"
    path.write_text(
        yaml.safe_dump({"variants": [{"base": "mobilenetv1_100", "phis": [1], "name": name, "hub": {1: repo}}]})
    )
    return timm_compound.register_files([path])


def test_save_to_dir_loads_with_local_dir(tmp_path):
    model = timm.create_model("mobilenetv1_100_cs_phi0", num_classes=5)
    folder = tc_hub.save_to_dir(model, tmp_path / "out")
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    loaded = timm.create_model(f"local-dir:{folder}", pretrained=True)
    assert torch.equal(outputs(loaded), outputs(model))
    assert f'timm.create_model("local-dir:{folder.resolve()}", pretrained=True)' in (folder / "README.md").read_text()


# ------------------------------------------------------------------ bad input


def upload(files: dict[str, bytes]) -> str:
    repo = repo_name("bad")
    api = HfApi()
    api.create_repo(repo)
    from huggingface_hub import CommitOperationAdd

    api.create_commit(repo, [CommitOperationAdd(k, v) for k, v in files.items()], commit_message="crafted")
    return repo


class Unpickled:
    """A pickle that leaves a mark if anything ever unpickles it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def bad_repos(published, hub, tmp_path) -> dict[str, tuple[dict[str, bytes], str]]:
    good = hub.files(*published["registered"][:2])
    config = json.loads(good["config.json"])
    no_plan = {k: v for k, v in config.items() if k != "compound_plan"}
    invalid = json.loads(json.dumps(config))
    invalid["compound_plan"]["depths"] = "many"
    invalid["model_args"]["compound_plan"]["depths"] = "many"
    other_weights = hub.files(*published["coefficients"][:2])["model.safetensors"]
    evil = pickle.dumps(Unpickled(tmp_path / "UNPICKLED"))
    return {
        "no_plan": (
            {"config.json": json.dumps(no_plan).encode(), "model.safetensors": good["model.safetensors"]},
            "config.json has no compound_plan: not published by timm-compound",
        ),
        "invalid_plan": (
            {"config.json": json.dumps(invalid).encode(), "model.safetensors": good["model.safetensors"]},
            "compound_plan: depths: Input should be a valid list",
        ),
        "wrong_shapes": (
            {"config.json": good["config.json"], "model.safetensors": other_weights},
            "the tensors do not match the plan's model (mobilenetv1_100, phi=1, num_classes=10): shape mismatch: ",
        ),
        "no_weights": ({"config.json": good["config.json"]}, "has no model.safetensors"),
        "pickle_only": (
            {"config.json": good["config.json"], "pytorch_model.bin": evil},
            "holds only pickled weights (pytorch_model.bin); timm-compound loads model.safetensors only and never unpickles",
        ),
    }


@pytest.mark.parametrize("case", ["no_plan", "invalid_plan", "wrong_shapes", "no_weights", "pickle_only"])
def test_bad_repos_are_clear_errors_on_every_load_path(case, published, hub, tmp_path):
    files, message = bad_repos(published, hub, tmp_path)[case]
    repo = upload(files)
    with pytest.raises(CompoundError, match=re.escape(message)):
        tc_hub.from_hub(repo)
    (variant,) = register(tmp_path, repo)
    with pytest.raises(CompoundError, match=re.escape(message)):
        timm.create_model(variant.name, pretrained=True)
    if case in ("wrong_shapes", "no_weights", "pickle_only"):  # configs timm itself can read: the plugin entrypoint
        with pytest.raises(CompoundError, match=re.escape(message)):
            timm.create_model(f"hf-hub:{repo}", pretrained=True)
    assert not (tmp_path / "UNPICKLED").exists()


def test_timm_alone_would_unpickle_a_pickle_only_repo(hub, tmp_path):
    """Why our paths check first: timm's loader falls back to pytorch_model.bin when there is no safetensors."""
    from timm.models._hub import load_state_dict_from_hf

    repo = upload({"pytorch_model.bin": pickle.dumps(Unpickled(tmp_path / "UNPICKLED"))})
    with pytest.raises(RuntimeError, match="weights_only=True blocked loading this checkpoint"):
        load_state_dict_from_hf(repo)  # it reached torch.load: weights_only=True refuses this pickle, not every one


def test_missing_repo_and_revision(published):
    with pytest.raises(CompoundError, match=r"cannot load org/does-not-exist from the Hub: 404"):
        tc_hub.from_hub("org/does-not-exist")
    with pytest.raises(CompoundError, match=r"cannot load .*@nope from the Hub: 404"):
        tc_hub.from_hub(published["first"][0], revision="nope")


def test_publish_refuses_weights_that_do_not_fit_the_plan(hub, tmp_path):
    other = timm.create_model("mobilenetv1_100_cs_phi0", num_classes=10)
    safetensors.torch.save_file(other.state_dict(), str(tmp_path / "phi0.safetensors"))
    repo = repo_name("refused")
    with pytest.raises(
        CompoundError,
        match=r"phi0.safetensors: the tensors do not match the plan's model "
        r"\(mobilenetv1_100, phi=1, num_classes=10\): shape mismatch: ",
    ):
        tc_hub.publish("mobilenetv1_100_cs_phi1", repo, weights=tmp_path / "phi0.safetensors")
    (tmp_path / "w.bin").write_bytes(b"not a pickle")
    with pytest.raises(
        CompoundError, match=r"w.bin: weights must be a .safetensors state dict; timm-compound never unpickles"
    ):
        tc_hub.publish("mobilenetv1_100_cs_phi1", repo, weights=tmp_path / "w.bin")
    assert repo not in hub.repos


def test_publish_given_weights_infers_the_head(hub, tmp_path):
    source = timm.create_model("mobilenetv1_100_cs_phi1", num_classes=4)
    safetensors.torch.save_file(source.state_dict(), str(tmp_path / "trained.safetensors"))
    repo = repo_name("weights")
    tc_hub.publish("mobilenetv1_100_cs_phi1", repo, weights=tmp_path / "trained.safetensors")
    published = safetensors.torch.load(hub.files(repo)["model.safetensors"])
    assert all(torch.equal(published[k], v) for k, v in source.state_dict().items())
    assert json.loads(hub.files(repo)["config.json"])["num_classes"] == 4


# ------------------------------------------------------------------ security and atomicity


def test_token_is_sent_but_never_printed_or_logged(hub, capfd, caplog):
    token = "hf_SeCrEt" + uuid.uuid4().hex
    hub.token = token
    caplog.set_level("DEBUG")
    model = timm.create_model("mobilenetv1_100_cs_phi0", num_classes=3)
    repo = repo_name("token")
    with pytest.raises(
        CompoundError, match="publishing to .* failed, nothing was committed: Client error '401 Unauthorized'"
    ):
        tc_hub.publish(model, repo, token="hf_wrong")
    tc_hub.publish(model, repo, token=token)
    assert hub.seen_authorization.count(f"Bearer {token}") >= 3  # create, preupload, commit...
    captured = capfd.readouterr()
    assert token not in captured.out + captured.err + caplog.text
    assert "hf_wrong" not in captured.out + captured.err + caplog.text


@pytest.mark.parametrize("failure", ["commit", "upload"])
def test_a_failed_publish_leaves_the_repo_as_it_was(failure, hub):
    repo = repo_name(f"fail-{failure}")
    tc_hub.publish(timm.create_model("mobilenetv1_100_cs_phi0", num_classes=3), repo)
    head, files = hub.head(repo), hub.files(repo)
    hub.fail = {failure}
    with pytest.raises(CompoundError, match=f"publishing to {repo} failed, nothing was committed: "):
        tc_hub.publish(timm.create_model("mobilenetv1_100_cs_phi0", num_classes=3), repo)
    assert hub.head(repo) == head and hub.files(repo) == files
    assert len(hub.history(repo)) == 2


def test_publish_to_a_branch_leaves_main_alone(hub):
    repo = repo_name("branch")
    model = timm.create_model("mobilenetv1_100_cs_phi0", num_classes=3)
    main = tc_hub.publish(model, repo)
    dev = tc_hub.publish(timm.create_model("mobilenetv1_100_cs_phi0", num_classes=3), repo, revision="dev")
    assert hub.head(repo) == main and hub.head(repo, "dev") == dev != main
    assert torch.equal(outputs(tc_hub.from_hub(repo, revision="main")), outputs(model))


def test_unreachable_endpoint_is_a_clear_error_not_a_traceback(tmp_path):
    """A Hub that cannot be reached: from_hub and publish say so as a CompoundError; the CLI exits 1."""
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = (
        "import timm_compound\n"
        "for call in (lambda: timm_compound.from_hub('org/x'), lambda: timm_compound.publish('resnet18_cs_phi0', 'org/x')):\n"
        "    try:\n"
        "        call()\n"
        "    except timm_compound.CompoundError as error:\n"
        "        print(type(error).__name__, str(error).split(':')[0])\n"
    )
    env = dict(os.environ, HF_ENDPOINT=f"http://127.0.0.1:{port}", HF_HOME=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "CompoundError cannot load org/x from the Hub",
        "CompoundError publishing to org/x failed, nothing was committed",
    ]


def test_plain_timm_config_that_contradicts_its_plan_is_refused(published, hub):
    """A ResNet-layout repo is built by plain timm from model_args: they must be the plan's."""
    repo, sha, _ = published["custom_rule"]
    good = hub.files(repo, sha)
    config = json.loads(good["config.json"])
    assert config["architecture"] == "resnet18"
    config["model_args"]["layers"] = [2, 2, 2, 2]
    bad = upload({"config.json": json.dumps(config).encode(), "model.safetensors": good["model.safetensors"]})
    with pytest.raises(
        CompoundError, match=r"model_args.layers = \[2, 2, 2, 2\] contradicts compound_plan \(\[1, 1, 1, 1\]\)"
    ):
        tc_hub.from_hub(bad)
    missing = upload({"model.safetensors": good["model.safetensors"]})
    with pytest.raises(CompoundError, match="has no config.json: not a timm model repo"):
        tc_hub.from_hub(missing)


OLD_CONFIGS = Path(__file__).parent / "data" / "published-0.1.0"


@pytest.mark.parametrize(
    "variant, architecture",
    [
        ("mobilenetv1_100_cs_phi1", PLAN_ENTRYPOINT),  # built by the plugin entrypoint from the plan in model_args
        ("resnet18_cs_phi1", "resnet18"),  # plain timm kwargs
    ],
)
def test_configs_published_before_the_package_layout_still_load(tmp_path, variant, architecture):
    """config.json files written by timm-compound 0.1.0 (flat modules), kept verbatim in tests/data:
    the entrypoint name timm resolves and the config format did not move with the code."""
    folder = tmp_path / variant
    folder.mkdir()
    config = json.loads((OLD_CONFIGS / variant / "config.json").read_text())
    assert config["architecture"] == architecture and config["timm_compound"]["version"] == "0.1.0"
    (folder / "config.json").write_text(json.dumps(config))
    torch.manual_seed(0)
    trained = timm.create_model(variant, num_classes=config["num_classes"]).eval()
    safetensors.torch.save_file(state(trained), str(folder / "model.safetensors"))

    loaded = timm.create_model(f"local-dir:{folder}", pretrained=True)
    if architecture == PLAN_ENTRYPOINT:
        assert loaded.compound_plan == trained.compound_plan
    assert torch.equal(outputs(loaded), outputs(trained))
    assert timm.models.get_pretrained_cfg(PLAN_ENTRYPOINT) is not None
    assert PLAN_ENTRYPOINT in timm.list_models(module="compound_scaled")


@pytest.mark.parametrize("variant", ["ghostnet_100_cs_phi1", "regnety_008_cs_phi1"])
def test_rule_v2_layouts_round_trip_through_a_folder(tmp_path, variant):
    """rows/multiplier (GhostNet) and dataclass-field (RegNet) plans publish and reload with their outputs."""
    torch.manual_seed(0)
    model = timm.create_model(variant, num_classes=3).eval()
    folder = tc_hub.save_to_dir(model, tmp_path / variant)
    loaded = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
    assert loaded.compound_plan == model.compound_plan
    assert torch.equal(outputs(loaded), outputs(model))
