"""The bad-input corpus: hostile and careless rule files, registry files, arguments and published folders.

Every case must end in a clear error that names the file and field (or the argument), exit 1 from the
CLI with no traceback, leave nothing half-registered or half-written, and take under 10 s; the cases
that could allocate (huge plans, hostile published folders) also run in a child process whose memory
growth is bounded (tests at the end).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import safetensors.torch
import timm
import torch
import yaml
from typer.testing import CliRunner

import timm_compound as tc
from timm_compound.cli import app
from timm_compound.scaling.rulebook import shipped_dir

RULES, REGISTRY = shipped_dir("rules"), shipped_dir("registry")
CASE_SECONDS = 10


def cpu_seconds() -> float:
    """CPU time of this process: unlike wall time, not inflated by a busy machine. Children are left out: a
    child spends ~7 CPU s importing torch and timm before its case starts, so children time their own cases
    (see the memory tests at the end)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@pytest.fixture(autouse=True)
def _each_case_is_quick():
    start = cpu_seconds()
    yield
    assert cpu_seconds() - start < CASE_SECONDS


def cli(*args: str):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output  # stdout and stderr together


def assert_refused(exit_code: int, output: str, *needles: str) -> None:
    assert exit_code == 1, output
    assert "Traceback" not in output, output
    flat = " ".join(output.split())  # rich wraps long lines
    for needle in needles:
        assert " ".join(needle.split()) in flat, f"{needle!r} not in {output!r}"


# ---------------------------------------------------------------- rule files (rules validate)


def _rule(tmp_path: Path, name: str = "efficientnet.yaml", **changes) -> Path:
    """A user copy of a shipped rule (own family, `replaces` the shipped one) with fields changed."""
    data = yaml.safe_load((RULES / name).read_text())
    data["replaces"], data["family"] = data["family"], f"my_{data['family']}"
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        target = data
        for key in parents:
            target = target.setdefault(key, {})
        target[leaf] = value
    path = tmp_path / "rule.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


RULE_CASES = {
    "alpha-inf": (dict(coefficients__alpha=float("inf")), "coefficients.alpha", "finite number"),
    "beta-nan": (dict(coefficients__beta=float("nan")), "coefficients.beta", "finite number"),
    "tolerance-nan": (dict(constraint__tolerance=float("nan")), "constraint.tolerance", "finite number"),
    "flops-factor-inf": (dict(constraint__flops_factor=float("inf")), "constraint.flops_factor", "finite number"),
    "schedule-start-inf": (
        dict(schedules={"drop_rate": {"start": float("inf"), "per_phi": 0.05}}),
        "schedules.drop_rate.start",
        "finite number",
    ),
    "schedule-max-nan": (
        dict(schedules={"drop_rate": {"start": 0.2, "per_phi": 0.05, "max": float("nan")}}),
        "schedules.drop_rate.max",
        "finite number",
    ),
    "schedule-unknown-arg": (
        dict(schedules={"no_such_arg": {"start": 0.2, "per_phi": 0.05}}),
        "schedules.no_such_arg",
        "EfficientNet has no constructor argument 'no_such_arg'",
    ),
    "schedule-loading-option": (
        dict(schedules={"pretrained_strict": {"start": 0.0, "per_phi": 0.0}}),
        "schedules.pretrained_strict",
        "no constructor argument 'pretrained_strict'",
    ),
    "depth-arg-loading-option": (
        dict(depth__arg="pretrained_cfg_overlay"),
        "depth.arg",
        "'pretrained_cfg_overlay' is one of timm's loading options",
    ),
    "head-arg-loading-option": (
        dict(head={"policy": "scale", "arg": "pretrained_cfg"}),
        "head.arg",
        "'pretrained_cfg' is one of timm's loading options",
    ),
    "depth-min-huge": (dict(depth__min=1_000_000), None, "1,000,000 blocks in a stage (limit 10,000)"),
    "resolution-base-huge": (dict(resolution={"base": 100_000}), None, "px input (limit 8,192)"),
    "divisor-zero": (dict(width__divisor=0), "width.divisor", "greater than or equal to 1"),
    "typo-key": (dict(width__divsor=8), "width.divsor", "Extra inputs are not permitted"),
    "unknown-architecture": (dict(architectures=["efficientnet_b99"]), "architectures.0", "unknown timm architecture"),
    "bad-family-name": (dict(family="My Family!"), "family", "should match pattern"),
    "coefficients-off-constraint": (
        dict(coefficients={"alpha": 2.0, "beta": 1.5, "gamma": 1.5}),
        "coefficients",
        "is outside 2.0",
    ),
    "replaces-unknown-family": (dict(replaces="nosuchfamily"), "replaces", "no loaded rule has family 'nosuchfamily'"),
    # rule language v3: paths into nested data, fixed dimensions, strategies
    "path-index-out-of-range": (
        dict(depth__arg="block_args.9"),
        "depth.arg",
        "block_args has 7 items: index 9 is out of range (indices 0-6)",
    ),
    "path-missing-key": (
        dict(width__arg="block_args.*.*.out_channels", width__layout="fields"),
        "width.arg",
        "block_args.0.0 (dict) has no key 'out_channels'; its keys: block_type, out_chs, stride",
    ),
    "path-star-over-int": (
        dict(stem={"policy": "scale", "arg": "stem_size.*"}),
        "stem.arg",
        "stem_size is an int (32), not a list or tuple: `*` selects items of a sequence",
    ),
    "path-brackets": (dict(depth__arg="block_args[0]"), "depth.arg", "'block_args[0]' is not an argument path"),
    "fixed-and-scaled": (
        dict(depth={"fixed": "it cannot", "arg": "block_args", "layout": "block_args"}),
        "depth",
        "`fixed` says depth does not scale, but arg and layout are scaling policies for it",
    ),
    "dwr-alpha-above-one": (
        dict(strategy={"name": "dWr", "alpha": 1.2}),
        "strategy",
        "it must lie strictly between 0 and 1, got 1.2",
    ),
    "dwr-alpha-zero": (dict(strategy={"name": "dWr", "alpha": 0}), "strategy", "strictly between 0 and 1, got 0"),
}


@pytest.mark.parametrize("changes, field, message", RULE_CASES.values(), ids=RULE_CASES.keys())
def test_bad_rule_field(tmp_path, changes, field, message):
    path = _rule(tmp_path, **changes)
    code, output = cli("rules", "validate", path)
    assert_refused(code, output, str(path), message, *([f"{field}:"] if field else []))


RAW_CASES = {
    "nested-20000-deep": (("a: " + "[" * 20000 + "]" * 20000 + "\n").encode(), "nested too deeply"),
    "non-utf8": (b"family: x\n\xff\xfe\n", "not valid YAML/UTF-8: byte 10 is not UTF-8"),
    "binary-garbage": (bytes(range(256)) * 8, "not valid YAML/UTF-8"),
    "billion-laughs": (
        (
            "a: &a ["
            + ", ".join(["x"] * 10)
            + "]\n"
            + "".join(f"{n}: &{n} [" + ", ".join([f"*{p}"] * 10) + "]\n" for p, n in zip("abcdef", "bcdefg"))
        ).encode(),
        "once aliases are expanded",
    ),
    "python-tag": (b"family: !!python/object/apply:os.system ['touch pwned']\n", "not valid YAML"),
    "top-level-list": (b"- family\n- x\n", "expected a YAML mapping"),
    "empty-file": (b"", "expected a YAML mapping at the top level, got NoneType"),
    "too-large": (b"# " + b"x" * 1_100_000 + b"\n", "larger than any rule or registry file"),
}


@pytest.mark.parametrize("content, message", RAW_CASES.values(), ids=RAW_CASES.keys())
def test_unreadable_yaml(tmp_path, content, message):
    path = tmp_path / "file.yaml"
    path.write_bytes(content)
    code, output = cli("rules", "validate", path)
    assert_refused(code, output, f"{path}:", message)
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


# ---------------------------------------------------------------- registry files (validate and load: all or nothing)


REGISTRY_CASES = {
    "phi-is-a-bool": ({"base": "resnet18", "phis": [True]}, "variants.0.phis.0", "valid integer"),
    "negative-phi": ({"base": "resnet18", "phis": [-1]}, "variants.0.phis", "must be >= 0"),
    "template-attribute": (
        {"base": "resnet18", "phis": [1], "name": "{phi.__class__.__mro__}"},
        "variants.0.name",
        "use {base} and {phi} only",
    ),
    "template-index": (
        {"base": "resnet18", "phis": [1], "name": "{base[0]}_{phi}"},
        "variants.0.name",
        "use {base} and {phi} only",
    ),
    "template-unknown-field": (
        {"base": "resnet18", "phis": [1], "name": "{model}_{phi}"},
        "variants.0.name",
        "use {base} and {phi} only",
    ),
    "template-conversion": (
        {"base": "resnet18", "phis": [1], "name": "{base!r}_{phi}"},
        "variants.0.name",
        "use {base} and {phi} only",
    ),
    "name-with-capitals": (
        {"base": "resnet18", "phis": [1], "name": "My_{base}_{phi}"},
        "variants.0",
        "is not a timm model name",
    ),
    "name-hf-hub-prefix": (
        {"base": "resnet18", "phis": [1], "name": "hf-hub:{base}_x{phi}"},
        "variants.0",
        "is not a timm model name",
    ),
    "name-empty": ({"base": "resnet18", "phis": [1], "name": ""}, "variants.0", "is not a timm model name"),
    "hub-id-dotdot": (
        {"base": "resnet18", "phis": [1], "name": "{base}_bad{phi}", "hub": {1: "../etc"}},
        "variants.0.hub",
        "not a Hub repo id of the form org/name",
    ),
    "hub-id-three-parts": (
        {"base": "resnet18", "phis": [1], "name": "{base}_bad{phi}", "hub": {1: "a/b/c"}},
        "variants.0.hub",
        "not a Hub repo id",
    ),
    "hub-phi-not-listed": (
        {"base": "resnet18", "phis": [1], "name": "{base}_bad{phi}", "hub": {2: "org/x"}},
        "variants.0",
        "hub lists phi [2] that is not in phis",
    ),
    "unknown-base": ({"base": "nosuchnet", "phis": [1]}, "variants.0.base", "unknown timm architecture 'nosuchnet'"),
    "base-without-rule": (
        {"base": "vit_tiny_patch16_224", "phis": [1]},
        "variants.0.base",
        "no rule covers 'vit_tiny_patch16_224'",
    ),
    "collides-with-timm": (
        {"base": "resnet18", "phis": [0], "name": "resnet34"},
        "variants.0.name",
        "'resnet34' collides with an existing timm model name",
    ),
    "collides-with-shipped": (
        {"base": "resnet18", "phis": [1]},
        "variants.0.name",
        "'resnet18_cs_phi1' is already registered by",
    ),
    "duplicate-phi": (
        {"base": "resnet18", "phis": [1, 1], "name": "{base}_dup{phi}"},
        "variants.0.phis",
        "a phi is listed twice",
    ),
}


@pytest.mark.parametrize("entry, field, message", REGISTRY_CASES.values(), ids=REGISTRY_CASES.keys())
def test_bad_registry_file(tmp_path, entry, field, message):
    path = tmp_path / "registry.yaml"
    # a good entry first: registering must be all or nothing
    path.write_text(
        yaml.safe_dump({"variants": [{"base": "resnet18", "phis": [3], "name": "{base}_fine{phi}"}, entry]})
    )
    field = field.replace("variants.0", "variants.1")
    before = (tc.registered(), set(timm.list_models(module="compound_scaled")))
    code, output = cli("rules", "validate", path)
    assert_refused(code, output, str(path), message)
    with pytest.raises(tc.RuleError, match=r".*") as caught:
        tc.load_rules(path)
    assert caught.value.source == str(path) and (caught.value.field or "").startswith(field.split(".")[0])
    assert message.split("'")[0] in str(caught.value)
    assert (tc.registered(), set(timm.list_models(module="compound_scaled"))) == before
    assert not timm.is_model("resnet18_fine3")


# ---------------------------------------------------------------- API and CLI arguments


def _raises(call: Callable[[], object], *needles: str) -> None:
    with pytest.raises(tc.CompoundError) as caught:
        call()
    for needle in needles:
        assert needle in str(caught.value), str(caught.value)


API_CASES = {
    "plan-depth-1e9": (lambda: tc.plan("resnet18", d=1e9), ["2,000,000,000 blocks in a stage (limit 10,000)"]),
    "plan-phi-100": (lambda: tc.plan("resnet18", 100), ["resnet18 at phi=100", "165,635,950 blocks"]),
    "plan-r-100": (lambda: tc.plan("resnet18", r=100), ["22,400 px input (limit 8,192)"]),
    "plan-resolution-huge": (lambda: tc.plan("resnet18", 0, resolution=100_000), ["100,000 px input"]),
    "plan-derived-layout-huge": (lambda: tc.plan("ghostnet_100", d=1e6), ["blocks in a stage (limit 10,000)"]),
    "scale-depth-1e9": (lambda: tc.scale("resnet18", d=1e9), ["2,000,000,000 blocks"]),
    "build-more-than-memory": (
        lambda: tc.build(tc.plan("resnet18", w=300)),
        ["more than this machine's", "GiB hold as float32"],
    ),
    "plan-d-nan": (lambda: tc.plan("resnet18", d=float("nan")), ["d must be a finite number"]),
    "plan-w-negative": (lambda: tc.plan("resnet18", w=-1), ["w must be > 0"]),
    "plan-phi-bool": (lambda: tc.plan("resnet18", True), ["phi must be a finite number"]),
    "plan-phi-and-d": (lambda: tc.plan("resnet18", 1, d=2), ["either phi or explicit d/w/r"]),
    "plan-resolution-zero": (lambda: tc.plan("resnet18", 0, resolution=0), ["resolution must be a positive int"]),
    "plan-coefficients-off-constraint": (
        lambda: tc.plan("resnet18", 1, coefficients=(1.0, 1.0, 1.0)),
        ["do not meet", "constraint"],
    ),
    "plan-unknown-base-suggests": (
        lambda: tc.plan("resnt18", 1),
        ["no rule covers 'resnt18'", "did you mean resnet18"],
    ),
    "measure-typo-suggests": (lambda: tc.measure("resnet18_cs_ph2"), ["did you mean resnet18_cs_phi2"]),
    "fit-negative-budget": (lambda: tc.fit("resnet18", max_gmacs=-1), ["max_gmacs must be > 0"]),
    "fit-nan-budget": (lambda: tc.fit("resnet18", max_gmacs=float("nan")), ["max_gmacs must be a finite number"]),
    "fit-no-budget": (lambda: tc.fit("resnet18"), ["give at least one budget"]),
}


@pytest.mark.parametrize("call, needles", API_CASES.values(), ids=API_CASES.keys())
def test_bad_api_argument(call, needles):
    _raises(call, *needles)


CLI_CASES = {
    "show-phi-100": (["show", "resnet18", "--phi", "100"], ["165,635,950 blocks in a stage"]),
    "show-unknown-name": (["show", "resnet18_cs_phi99"], ["did you mean"]),
    "show-registered-with-phi": (["show", "resnet18_cs_phi1", "--phi", "2"], ["is registered at phi=1"]),
    "demo-unknown-variant": (["demo", "resnet18"], ["not registered: resnet18"]),
    "fit-negative": (["fit", "resnet18", "--max-gmacs", "-1"], ["max_gmacs must be > 0"]),
    "table-empty-range": (["table", "resnet18", "--phi", "5-1"], ["names no phi"]),
    "table-bad-format": (["table", "resnet18", "--phi", "0", "--format", "xml"], ["--format must be"]),
    "publish-to-dev-null": (
        ["publish", "resnet18_cs_phi0", "--to-dir", "/dev/null"],
        ["/dev/null exists and is not a folder"],
    ),
    "publish-unknown": (["publish", "resnet18_cs_phi99", "--to-dir", "{tmp}/out"], ["not a registered variant"]),
    "publish-pickle-weights": (
        ["publish", "resnet18_cs_phi0", "--weights", "{tmp}/w.bin", "--to-dir", "{tmp}/out"],
        ["never unpickles"],
    ),
    "table-huge-range": (["table", "resnet18", "--phi", "0-100000"], ["names 100,001 phis; at most 1,000"]),
    "table-range-past-the-limits": (["table", "resnet18", "--phi", "0-200"], ["resnet18 at phi=", "is too large"]),
    "table-phi-nan": (["table", "resnet18", "--phi", "nan"], ["--phi must be finite numbers"]),
    "table-plot-onto-a-folder": (["table", "resnet18", "--phi", "0", "--plot", "{tmp}"], ["is a folder"]),
    "table-plot-unknown-format": (["table", "resnet18", "--phi", "0", "--plot", "{tmp}/t.xyz"], ["must end in .png"]),
    "table-plot-under-a-file": (
        ["table", "resnet18", "--phi", "0", "--plot", "{tmp}/w.bin/t.png"],
        ["is not a writable folder"],
    ),
    "fit-to-dir-onto-a-file": (
        ["fit", "resnet18", "--max-gmacs", "4", "--to-dir", "{tmp}/w.bin"],
        ["exists and is not a folder"],
    ),
    "fit-beyond-the-limits": (["fit", "resnet18", "--max-gmacs", "1e9"], ["more of resnet18 than the size limits"]),
}


@pytest.mark.parametrize("args, needles", CLI_CASES.values(), ids=CLI_CASES.keys())
def test_bad_cli_argument(tmp_path, args, needles):
    (tmp_path / "w.bin").write_bytes(b"\x80\x04not really a pickle")
    code, output = cli(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert_refused(code, output, *needles)
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_table_plot_makes_missing_folders(tmp_path):
    code, output = cli("table", "resnet18", "--phi", "0,1", "--plot", tmp_path / "new" / "deeper" / "t.png")
    assert code == 0, output
    assert (tmp_path / "new" / "deeper" / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args", [["show", "efficientnet_b0", "--phi", "3"], ["table", "resnet18", "--phi", "0,3"]])
def test_a_narrow_console_folds_tables_and_cuts_nothing(args):
    result = CliRunner().invoke(app, args, env={"COLUMNS": "40"})
    assert result.exit_code == 0, result.output
    assert "…" not in result.output  # long cells fold onto more lines, never cut


CRASHING_COMMAND = """
import sys, timm_compound_cli
timm_compound_cli.CLI_RUN = True
from timm_compound.cli import app

@app.command("crash")
def crash():
    raise RuntimeError("an unforeseen failure")

sys.argv = ["timm-compound", "crash", *sys.argv[1:]]
timm_compound_cli.main()
"""


@pytest.mark.parametrize("debug", [False, True])
def test_an_unexpected_exception_is_one_line_unless_debugging(debug):
    run = subprocess.run(
        [sys.executable, "-c", CRASHING_COMMAND, *(["--debug"] if debug else [])],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TIMM_COMPOUND_DEBUG": ""},
    )
    assert run.returncode == 1
    if debug:
        assert "Traceback" in run.stderr and "RuntimeError: an unforeseen failure" in run.stderr
    else:
        assert run.stderr.strip() == (
            "error: RuntimeError: an unforeseen failure (run again with --debug for the traceback)"
        )


def test_publish_onto_a_file_writes_nothing(tmp_path):
    target = tmp_path / "taken"
    target.write_text("mine")
    code, output = cli("publish", "resnet18_cs_phi0", "--to-dir", target)
    assert_refused(code, output, "exists and is not a folder")
    assert target.read_text() == "mine"


# ---------------------------------------------------------------- published folders


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> dict[str, Path]:
    """Two good folders: a plugin-entrypoint plan (MobileNetV1) and a plain-timm plan (ResNet-18)."""
    root = tmp_path_factory.mktemp("published")
    torch.manual_seed(0)
    return {
        "mnv1": tc.save_to_dir(timm.create_model("mobilenetv1_100_cs_phi0", num_classes=3), root / "mnv1"),
        "resnet": tc.save_to_dir(timm.create_model("resnet18_cs_phi0", num_classes=3), root / "resnet"),
    }


def _copy(source: Path, target: Path) -> Path:
    target.mkdir()
    for file in source.iterdir():
        os.link(file, target / file.name) if file.suffix == ".safetensors" else shutil.copy(file, target / file.name)
    return target


def _edit(config: dict, dotted: str, value) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        config = config[key]
    config[leaf] = value


def _both_plans(config: dict, dotted: str, value) -> None:
    _edit(config, f"compound_plan.{dotted}", value)
    if config["architecture"] == "compound_scaled_from_plan":
        _edit(config, f"model_args.compound_plan.{dotted}", value)


FOLDER_CASES = {
    "inject-pretrained_cfg_overlay": (
        "mnv1",
        lambda c: _both_plans(c, "constructor_args", {"pretrained_cfg_overlay": {"file": "/etc/passwd"}}),
        "constructor_args.pretrained_cfg_overlay is not an argument its rule's schedules declare",
    ),
    "inject-pretrained_strict": (
        "mnv1",
        lambda c: _both_plans(c, "constructor_args", {"pretrained_strict": 0}),
        "constructor_args.pretrained_strict is not an argument",
    ),
    "schedule-value-off": (
        "mnv1",
        lambda c: _both_plans(c, "constructor_args", {"drop_rate": 1e9}),
        "constructor_args.drop_rate",
    ),
    "rule-arg-loading-option": (
        "mnv1",
        lambda c: _both_plans(c, "rule.head", {"policy": "scale", "arg": "pretrained_cfg_overlay"}),
        "'pretrained_cfg_overlay' is one of timm's loading options",
    ),
    "rule-schedule-loading-option": (
        "mnv1",
        lambda c: _both_plans(c, "rule.schedules", {"pretrained_strict": {"start": 0, "per_phi": 0}}),
        "no constructor argument 'pretrained_strict'",
    ),
    "depths-200000": (
        "mnv1",
        lambda c: _both_plans(c, "depths", [200_000] * 6),
        "200,000 blocks in a stage (limit 10,000)",
    ),
    "depths-edited": (
        "mnv1",
        lambda c: _both_plans(c, "depths", [2, 2, 2, 2, 2, 2]),
        "depths = [2, 2, 2, 2, 2, 2] is not what its own rule gives",
    ),
    "resolution-edited": ("resnet", lambda c: _both_plans(c, "resolution", 9000), "9,000 px input (limit 8,192)"),
    "widths-20000-by-its-rule": ("resnet", None, "the weights file holds"),
    "plan-not-an-object": ("mnv1", lambda c: _both_plans(c, "rule", "nope"), "rule"),
    "unknown-base": ("mnv1", lambda c: _both_plans(c, "base", "resnet999"), "resnet999"),
    "no-compound-plan": ("resnet", lambda c: c.pop("compound_plan"), "has no compound_plan"),
    "architecture-unknown": ("resnet", lambda c: c.update(architecture="alexnet"), "architecture 'alexnet'"),
    "model-args-contradict": (
        "resnet",
        lambda c: c["model_args"].update(layers=[9, 9, 9, 9]),
        "model_args.layers = [9, 9, 9, 9] contradicts compound_plan",
    ),
    "pretrained-cfg-unknown-key": ("resnet", lambda c: c["pretrained_cfg"].update(evil=1), "unknown keys ['evil']"),
    "num-classes-contradicts-classifier": (
        "resnet",
        lambda c: c.update(num_classes=7) or c["model_args"].update(num_classes=7),
        "shape mismatch: fc.weight (3, 512) != (7, 512)",
    ),
}


def _hostile_widths(folder: Path) -> None:
    """A plan its own rule does reproduce (w=40: 20,480-channel stages) beside small weights."""
    config = json.loads((folder / "config.json").read_text())
    huge = tc.plan("resnet18", w=40).to_dict()
    config.update(
        compound_plan=huge,
        architecture="compound_scaled_from_plan",
        model_args={"compound_plan": huge, "num_classes": 3},
    )
    (folder / "config.json").write_text(json.dumps(config))


def _make_folder(published: dict[str, Path], tmp_path: Path, case: str) -> Path:
    source, edit, _ = FOLDER_CASES[case]
    folder = _copy(published[source], tmp_path / case)
    if edit is None:
        _hostile_widths(folder)
    else:
        config = json.loads((folder / "config.json").read_text())
        edit(config)
        (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize("case", FOLDER_CASES)
def test_hostile_published_folder(published, tmp_path, case):
    folder = _make_folder(published, tmp_path, case)
    _raises(lambda: tc.from_dir(folder), FOLDER_CASES[case][2])
    _raises(lambda: tc.from_hub(f"local-dir:{folder}"), FOLDER_CASES[case][2])


def test_truncated_weights(published, tmp_path):
    folder = _copy(published["resnet"], tmp_path / "truncated")
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").unlink()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    _raises(lambda: tc.from_dir(folder), "is not a valid safetensors file")


PICKLE_MARKER = "pickle-was-loaded"


def _malicious_pickle(marker: Path) -> bytes:
    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    import pickle

    return pickle.dumps(Payload())


@pytest.mark.parametrize("where", ["pytorch_model.bin", "model.pt", "sub/extra.pkl", "model.safetensors.bin"])
def test_a_pickle_anywhere_is_never_unpickled(published, tmp_path, where):
    """A pickle whose payload would create a marker file, placed in a published folder: loading either
    refuses the folder (pickle only) or ignores the pickle; the marker never appears."""
    marker = tmp_path / PICKLE_MARKER
    payload = _malicious_pickle(marker)
    folder = _copy(published["mnv1"], tmp_path / "with-pickle")
    (folder / where).parent.mkdir(parents=True, exist_ok=True)
    (folder / where).write_bytes(payload)
    model = tc.from_dir(folder)
    assert model.compound_plan.base == "mobilenetv1_100"
    timm.create_model(f"local-dir:{folder}", pretrained=True)
    only = _copy(published["mnv1"], tmp_path / "pickle-only")
    (only / "model.safetensors").unlink()
    (only / "pytorch_model.bin").write_bytes(payload)
    _raises(lambda: tc.from_dir(only), "holds only pickled weights (pytorch_model.bin)", "never unpickles")
    with pytest.raises(tc.CompoundError):
        timm.create_model(f"local-dir:{only}", pretrained=True)
    assert not marker.exists()


# ---------------------------------------------------------------- memory: a child process measures its own peak


HEAVY = ["depths-200000", "widths-20000-by-its-rule", "resolution-edited", "depths-edited"]


def test_hostile_folders_fail_fast_and_small(published, tmp_path):
    """Each hostile folder fails in under 2 s of CPU; the child's peak memory grows by under 500 MB over its
    own imports, across all of them together (so every single case is bounded too)."""
    folders = [str(_make_folder(published, tmp_path, case)) for case in HEAVY]
    script = textwrap.dedent(f"""
        import json, resource, time, timm_compound as tc
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        seconds = []
        for folder in {folders!r}:
            start = time.process_time()
            try:
                tc.from_dir(folder)
            except tc.CompoundError:
                pass
            else:
                raise SystemExit("accepted " + folder)
            seconds.append(time.process_time() - start)
        for call in (lambda: tc.plan("resnet18", d=1e9), lambda: tc.scale("resnet18", d=1e9),
                     lambda: tc.build(tc.plan("resnet18", w=300))):
            try:
                call()
            except tc.CompoundError:
                pass
        print(json.dumps({{"seconds": seconds, "grew_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base}}))
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=dict(os.environ)
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert max(report["seconds"]) < 2, report
    assert report["grew_kb"] < 500 * 1024, report


# ---------------------------------------------------------------- every load path as strict as from_hub (issue 29)
#
# Each tampered copy of a published folder is refused by timm's own `local-dir:` path (with and without
# pretrained weights where the fault is in the config) and by the CLI (`inherit --from local-dir:DIR`, which
# loads through from_dir): exit 1, one line naming the folder and what is wrong, no traceback, no --out folder.


def _config(folder: Path) -> dict:
    return json.loads((folder / "config.json").read_text())


def _write_config(folder: Path, config) -> None:
    (folder / "config.json").write_text(json.dumps(config))


def _replace_weights(folder: Path, make) -> None:
    """Unlink first: the copy's weights are a hard link to the shared fixture's, which must not change."""
    (folder / "model.safetensors").unlink()
    make(folder / "model.safetensors")


def _huge_resnet(folder: Path, w: float) -> None:
    """A plan its own rule reproduces (w=40: 20,480-channel stages; w=400: 204,800) as a plain-timm config."""
    huge = tc.plan("resnet18", w=w, allow_oversize=True).to_dict()
    config = _config(folder)
    config.update(
        compound_plan=huge, model_args={"num_classes": 3, "layers": huge["depths"], "channels": huge["widths"]}
    )
    config["pretrained_cfg"]["input_size"] = [3, huge["resolution"], huge["resolution"]]
    _write_config(folder, config)


def _integer_weights(path: Path, source: Path) -> None:
    state = safetensors.torch.load_file(str(source))
    safetensors.torch.save_file(
        {k: (v * 100).to(torch.int32) if v.is_floating_point() else v for k, v in state.items()}, str(path)
    )


def _edit_plan(**changes):
    def edit(folder: Path) -> None:
        config = _config(folder)
        for key, value in changes.items():
            config["compound_plan"][key] = value(config["compound_plan"][key]) if callable(value) else value
        _write_config(folder, config)

    return edit


def _edit_config(change):
    def edit(folder: Path) -> None:
        config = _config(folder)
        change(config)
        _write_config(folder, config)

    return edit


# case -> (how to tamper with a copy of the ResNet folder, the message, whether pretrained=False is refused too)
TAMPERED = {
    "config-missing": (lambda f: (f / "config.json").unlink(), "has no config.json: not a timm model folder", True),
    "config-not-json": (lambda f: (f / "config.json").write_text("{nope"), "config.json is not readable JSON", True),
    "config-a-list": (
        lambda f: (f / "config.json").write_text("[1, 2]"),
        "config.json is not a JSON object (got list)",
        True,
    ),
    "config-100000-deep": (
        lambda f: (f / "config.json").write_text("[" * 100_000 + "]" * 100_000),
        "config.json is nested too deeply",
        True,
    ),
    "config-is-a-folder": (
        lambda f: ((f / "config.json").unlink(), (f / "config.json").mkdir()),
        "config.json is a folder, not a file",
        True,
    ),
    "architecture-a-vit": (
        _edit_config(lambda c: c.update(architecture="vit_tiny_patch16_224")),
        "architecture 'vit_tiny_patch16_224' is neither",
        True,
    ),
    "architecture-another-resnet": (
        _edit_config(lambda c: c.update(architecture="resnet34")),
        "architecture 'resnet34' is neither",
        True,
    ),
    "widths-doubled-in-the-plan": (
        _edit_plan(widths=lambda w: [2 * x for x in w]),
        "widths = [128, 256, 512, 1024] is not what its own rule gives",
        True,
    ),
    "plan-null": (
        _edit_config(lambda c: c.update(compound_plan=None)),
        "compound_plan: no scaling plan (expected an object, got NoneType)",
        True,
    ),
    "plan-a-string": (
        _edit_config(lambda c: c.update(compound_plan="resnet18")),
        "compound_plan: no scaling plan (expected an object, got str)",
        True,
    ),
    "plan-invalid-rule": (
        _edit_config(lambda c: c["compound_plan"]["rule"]["depth"].update(rounding="sideways")),
        "rule.depth.rounding: Input should be 'ceil', 'round' or 'floor'",
        True,
    ),
    "base-a-variant": (_edit_plan(base="resnet18_cs_phi1"), "base 'resnet18_cs_phi1' is not a timm architecture", True),
    "num-classes-a-string": (
        _edit_config(lambda c: c.update(num_classes="three")),
        "num_classes = 'three' is not a class count",
        True,
    ),
    "model-args-loading-option": (
        _edit_config(lambda c: c["model_args"].update(pretrained_strict=False)),
        "model_args.pretrained_strict is one of timm's loading options",
        True,
    ),
    "input-size-contradicts-plan": (
        _edit_config(lambda c: c["pretrained_cfg"].update(input_size=[3, 999, 999])),
        "pretrained_cfg.input_size = [3, 999, 999] is not [channels, 224, 224]",
        True,
    ),
    "stage-20000-wide": (lambda f: _huge_resnet(f, 40), "the weights file holds", False),
    "stage-200000-wide": (lambda f: _huge_resnet(f, 400), "the weights file holds", False),
    "weights-of-another-model": (
        lambda f: _replace_weights(f, lambda p: shutil.copy(f.parent / "source-mnv1" / "model.safetensors", p)),
        "the tensors do not match the plan's model (resnet18, phi=0, num_classes=3)",
        False,
    ),
    "weights-truncated": (
        lambda f: _replace_weights(
            f, lambda p: p.write_bytes((f.parent / "source" / "model.safetensors").read_bytes()[:5000])
        ),
        "is not a valid safetensors file",
        False,
    ),
    "weights-header-too-large": (
        lambda f: _replace_weights(f, lambda p: p.write_bytes((2**40).to_bytes(8, "little") + b"{}")),
        "is not a valid safetensors file",
        False,
    ),
    "weights-a-link-to-a-system-file": (
        lambda f: _replace_weights(f, lambda p: p.symlink_to("/etc/passwd")),
        "model.safetensors (a link to /etc/passwd) is not a valid safetensors file",
        False,
    ),
    "weights-a-link-to-a-device": (
        lambda f: _replace_weights(f, lambda p: p.symlink_to("/dev/zero")),
        "model.safetensors (a link to /dev/zero) is not a regular file",
        False,
    ),
    "weights-a-folder": (
        lambda f: _replace_weights(f, lambda p: p.mkdir()),
        "model.safetensors is a folder, not a file",
        False,
    ),
    "weights-integers": (
        lambda f: _replace_weights(f, lambda p: _integer_weights(p, f.parent / "source" / "model.safetensors")),
        "conv1.weight is I32 where the model holds torch.float32",
        False,
    ),
}


def _tampered(published: dict[str, Path], tmp_path: Path, case: str) -> Path:
    shutil.copytree(published["resnet"], tmp_path / "source")
    shutil.copytree(published["mnv1"], tmp_path / "source-mnv1")
    folder = _copy(published["resnet"], tmp_path / case)
    TAMPERED[case][0](folder)
    return folder


@pytest.mark.parametrize("case", TAMPERED)
def test_a_tampered_folder_is_refused_by_timms_own_loader_and_the_cli(published, tmp_path, case):
    folder = _tampered(published, tmp_path, case)
    _, message, config_fault = TAMPERED[case]
    for pretrained in (True, False) if config_fault else (True,):
        _raises(lambda: timm.create_model(f"local-dir:{folder}", pretrained=pretrained), str(folder), message)
    _raises(lambda: tc.from_dir(folder), message)
    code, output = cli("inherit", "resnet18_cs_phi1", "--from", f"local-dir:{folder}", "--out", tmp_path / "grown")
    assert_refused(code, output, str(folder), message)
    assert not (tmp_path / "grown").exists()


def test_a_plan_too_large_for_memory_is_refused_before_it_is_built(published, tmp_path):
    """Without weights to compare with, a 20,480-channel plan (66 GiB of float32) is refused by counting it
    on the meta device against the memory this process may use; a 204,800-channel one by its lower bound."""
    folder = _copy(published["resnet"], tmp_path / "wide")
    _huge_resnet(folder, 40)
    _raises(
        lambda: timm.create_model(f"local-dir:{folder}"), str(folder), "is too large: its weights take", "more than the"
    )
    _huge_resnet(folder, 400)
    _raises(lambda: timm.create_model(f"local-dir:{folder}"), str(folder), "is too large", "parameters")


HUB_IDS = {
    "hub-id-dotdot": ("hf-hub:../../etc", "'../../etc' is not a Hub repo id"),
    "hub-revision-dotdot": ("hf-hub:org/name@../../x", "revision '../../x' is not a valid branch, tag or commit name"),
    "local-dir-dotdot": (
        "local-dir:../../../../../../../../etc",
        "(= /etc) has no config.json: not a timm model folder",
    ),
}


@pytest.mark.parametrize("name, message", HUB_IDS.values(), ids=HUB_IDS.keys())
def test_paths_and_hub_ids_with_dotdot_are_refused(tmp_path, name, message):
    _raises(lambda: timm.create_model(name), message)
    code, output = cli("inherit", "resnet18_cs_phi1", "--from", name, "--out", tmp_path / "grown")
    assert_refused(code, output, message)
    assert not (tmp_path / "grown").exists()


def test_a_refused_pickle_never_repeats_torchs_advice(tmp_path):
    """torch's refusal says to re-run with weights_only=False; what timm-compound prints never does."""
    from timm_compound.train.checkpoint import STATE, load_last

    marker = tmp_path / PICKLE_MARKER
    (tmp_path / "last").mkdir()
    (tmp_path / "last" / STATE).write_bytes(_malicious_pickle(marker))
    with pytest.raises(tc.CompoundError) as caught:
        load_last(tmp_path / "last")
    message = str(caught.value)
    assert "cannot read the training state: the file is a pickle that the safe loader refused" in message
    assert "weights_only" not in message and "trusted source" not in message
    assert not marker.exists()


# ---------------------------------------------------------------- the CLI's own hostile inputs (issue 29)

BOX = "╭"  # click's and rich's error box: never, every error is one line


def _run_folder(root: Path, **broken) -> Path:
    """A finished run's folder (run.json and best.safetensors) with fields of run.json replaced."""
    scaled = tc.plan("resnet18", 0)
    torch.manual_seed(0)
    model = tc.build(scaled, num_classes=3)
    root.mkdir(parents=True)
    safetensors.torch.save_file(model.state_dict(), str(root / "best.safetensors"))
    record = {
        "format": 1,
        "status": "completed",
        "message": None,
        "model": {"spec": "resnet18_cs_phi0", "name": "resnet18_cs_phi0", "plan": scaled.to_dict(), "num_classes": 3},
        "dataset": {"name": "builtin:digits", "classes": 3, "train_images": 30, "val_images": 9},
        "settings": {
            "epochs": 1,
            "batch_size": 16,
            "lr": 0.00625,
            "opt": "sgd",
            "sched": "cosine",
            "warmup_epochs": 0,
            "weight_decay": 2e-5,
            "momentum": 0.9,
            "smoothing": 0.0,
            "mixup": 0.0,
            "ema": False,
            "ema_decay": 0.9998,
            "amp": None,
            "seed": 0,
            "resolution": 32,
            "train_resolution": 32,
            "augment": False,
            "train_samples": None,
            "val_samples": None,
        },
        "world_size": 1,
        "epochs_completed": 1,
        "best": {"epoch": 1, "top1": 40.0, "top5": 100.0, "eval_loss": 1.0},
    }
    for dotted, value in broken.items():
        _edit(record, dotted.replace("__", "."), value)
    (root / "run.json").write_text(json.dumps(record))
    return root


def _one_class_folder(root: Path) -> Path:
    from PIL import Image

    (root / "only").mkdir(parents=True)
    for index in range(4):
        Image.new("RGB", (8, 8), (index * 40, 0, 0)).save(root / "only" / f"{index}.png")
    return root


def _weights(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "w.safetensors"
    safetensors.torch.save_file(tc.build(tc.plan("resnet18", 0), num_classes=3).state_dict(), str(path))
    return path


def _image(tmp_path: Path) -> Path:
    from PIL import Image

    Image.new("RGB", (40, 40), "white").save(tmp_path / "img.png")
    return tmp_path / "img.png"


def _folder_with_readme(tmp_path: Path) -> Path:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "README.md").write_text("my notes")
    return tmp_path / "mine"


SEARCH = [
    "search",
    "resnet18",
    "--step",
    "0.1",
    "--bounds",
    "1.1,1.1,1.2",
    "--epochs",
    "1",
    "--resolution",
    "32",
    "--train-samples",
    "32",
    "--val-samples",
    "32",
]

# case -> (arguments, with {tmp}, {weights}, {image}, {run}, {oneclass}, {mine}, {textdb} filled in; the message).
# Afterwards no file under the test's folder has appeared or changed, and {tmp}/out does not exist.
CLI_HOSTILE = {
    "usage-unknown-option": (["show", "resnet18", "--phii", "2"], "No such option: --phii"),
    "usage-missing-argument": (["show"], "Missing argument 'name' (see timm-compound show --help)"),
    "usage-bad-number": (["table", "resnet18", "--batch-size", "many"], "Invalid value for '--batch-size'"),
    "usage-unknown-command": (["shwo", "resnet18"], "No such command 'shwo'"),
    "usage-unknown-rules-command": (["rules", "nope"], "No such command 'nope' (see timm-compound rules --help)"),
    "publish-revision-dotdot": (
        ["publish", "resnet18_cs_phi0", "--repo", "org/x", "--revision", "../../x"],
        "revision '../../x' is not a valid branch, tag or commit name: it contains '..'",
    ),
    "publish-revision-space": (
        ["publish", "resnet18_cs_phi0", "--repo", "org/x", "--revision", "my branch"],
        "contains a space",
    ),
    "publish-repo-a-path": (["publish", "resnet18_cs_phi0", "--repo", "../x"], "'../x' is not a Hub repo id"),
    "publish-into-a-used-folder": (
        ["publish", "resnet18_cs_phi0", "--to-dir", "{mine}"],
        "is not empty: it would replace README.md",
    ),
    "fit-into-a-used-folder": (
        ["fit", "resnet18", "--max-gmacs", "4", "--to-dir", "{mine}"],
        "is not empty: it would replace README.md",
    ),
    "inherit-into-a-used-folder": (
        ["inherit", "resnet18_cs_phi1", "--from", "{weights}", "--out", "{mine}"],
        "is not empty: it would replace README.md",
    ),
    "search-storage-not-a-url": (
        [*SEARCH, "--out", "{tmp}/out", "--storage", "notaurl"],
        "storage must be a database URL",
    ),
    "search-storage-a-text-file": (
        [*SEARCH, "--out", "{tmp}/out", "--storage", "sqlite:///{textdb}"],
        "cannot reach storage sqlite:///",
    ),
    "search-storage-unreachable-postgres": (
        [*SEARCH, "--out", "{tmp}/out", "--storage", "postgresql://nobody@127.0.0.1:9/studies"],
        "storage postgresql://",
    ),
    "search-zero-workers-dry-run": (
        ["search", "resnet18", "--workers", "0", "--dry-run"],
        "workers must be a whole number >= 1, got 0",
    ),
    "search-out-a-file": ([*SEARCH, "--out", "{textdb}"], "exists and is not a folder"),
    "cam-stage-99": (
        [
            "cam",
            "resnet18_cs_phi0",
            "--weights",
            "{weights}",
            "--image",
            "{image}",
            "--resolution",
            "32",
            "--stage",
            "99",
            "--out",
            "{tmp}/out",
        ],
        "stage 99 does not exist: ResNet has 4 stages",
    ),
    "cam-stage-0": (
        [
            "cam",
            "resnet18_cs_phi0",
            "--weights",
            "{weights}",
            "--image",
            "{image}",
            "--resolution",
            "32",
            "--stage",
            "0",
            "--out",
            "{tmp}/out",
        ],
        "numbered 1 to 4 (or -1 for the last)",
    ),
    "eval-run-json-bad-resolution": (
        ["eval", "--run", "{run}"],
        "run.json: settings.resolution: Input should be a valid integer",
    ),
    "cam-run-json-bad-resolution": (
        ["cam", "--run", "{run}", "--image", "{image}", "--out", "{tmp}/out"],
        "run.json: settings.resolution: Input should be a valid integer",
    ),
    "train-one-class": (
        [
            "train",
            "resnet18_cs_phi0",
            "--data",
            "{oneclass}",
            "--resolution",
            "32",
            "--epochs",
            "1",
            "--out",
            "{tmp}/out",
        ],
        "has only one class: classification needs at least two",
    ),
    "show-past-the-limits": (
        ["show", "resnet18", "--phi", "50"],
        "resnet18 at phi=50 is too large: 18,201 blocks in a stage",
    ),
    "table-past-the-limits": (["table", "resnet18", "--phi", "40-41"], "is too large"),
    "bad-format": (["list", "--format", "xml"], "--format must be table, csv, json or markdown, got 'xml'"),
}


@pytest.mark.parametrize("args, message", CLI_HOSTILE.values(), ids=CLI_HOSTILE.keys())
def test_hostile_cli_input_is_one_line_and_writes_nothing(tmp_path, args, message):
    needs = " ".join(args)
    fill = {"tmp": str(tmp_path), "textdb": str(tmp_path / "notes.txt")}
    (tmp_path / "notes.txt").write_text("not a database\n")
    if "{weights}" in needs:
        fill["weights"] = str(_weights(tmp_path))
    if "{image}" in needs:
        fill["image"] = str(_image(tmp_path))
    if "{run}" in needs:
        fill["run"] = str(_run_folder(tmp_path / "run", settings__resolution="32 px"))
    if "{oneclass}" in needs:
        fill["oneclass"] = str(_one_class_folder(tmp_path / "oneclass"))
    if "{mine}" in needs:
        fill["mine"] = str(_folder_with_readme(tmp_path))
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    code, output = cli(*[a.format(**fill) for a in args])
    assert_refused(code, output, message)
    assert BOX not in output and len([line for line in output.splitlines() if line.startswith("error:")]) == 1, output
    assert not (tmp_path / "out").exists()
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before  # nothing written, nothing changed (the README.md of a used folder included)


def test_a_registry_phi_that_overflows_names_the_file_and_field(tmp_path):
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump({"variants": [{"base": "resnet18", "phis": [100000], "name": "{base}_big{phi}"}]}))
    code, output = cli("rules", "validate", path)
    assert_refused(code, output, f"{path}: variants.0.phis: phi=100000 overflows the multipliers")
    path.write_text(yaml.safe_dump({"variants": [{"base": "resnet18", "phis": [40], "name": "{base}_big{phi}"}]}))
    with pytest.raises(tc.RuleError, match=r"variants\.0\.phis: phi=40 gives a 60,000 px input \(limit 8,192\)"):
        tc.load_rules(path)
    assert not timm.is_model("resnet18_big40")


def test_show_and_table_go_past_the_limits_when_asked():
    code, output = cli("show", "resnet18", "--phi", "50", "--allow-oversize", "--format", "json")
    assert code == 0, output
    assert json.loads(output)["depths"] == [18201] * 4


def test_an_unreadable_rules_folder_is_named_not_skipped(tmp_path, monkeypatch):
    """A folder on TIMM_COMPOUND_RULES_PATH that cannot be listed (permissions; the tests run as root, so
    the listing is made to fail) is an error naming it: `list` exits 1, nothing is registered."""
    from timm_compound.registry import startup

    folder = tmp_path / "my-rules"
    folder.mkdir()
    listing = Path.iterdir

    def iterdir(self):
        if self == folder:
            raise PermissionError(13, "Permission denied", str(self))
        return listing(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    monkeypatch.setattr(startup, "_done", False)
    monkeypatch.setattr(startup, "register_shipped", lambda: None)  # registered already in this process
    monkeypatch.setenv("TIMM_COMPOUND_RULES_PATH", str(folder))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    code, output = cli("list")
    assert_refused(
        code, output, f"{folder}: cannot read the folder: Permission denied (loaded from TIMM_COMPOUND_RULES_PATH)"
    )
    assert not (tmp_path / "cache").exists()


def test_python_dash_m_usage_errors_are_one_line_too():
    run = subprocess.run(
        [sys.executable, "-m", "timm_compound", "rules", "validate", "--strict"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr.strip() == "error: No such option: --strict (see timm-compound rules validate --help)"
