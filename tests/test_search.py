"""The coefficient search: candidates, a tiny search end to end (CLI, library, resume, files, rule), bad input."""

from __future__ import annotations

import contextlib
import csv
import functools
import json
import math
import os
import subprocess
import sys

import optuna
import pytest
import torch
import yaml
from typer.testing import CliRunner

from timm_compound.cli import app
from timm_compound.errors import CompoundError, UnknownModelError
from timm_compound.search.api import candidates, search
from timm_compound.search.confidence import decode
from timm_compound.search.grid import PAPER, Grid, grid_points, search_points
from timm_compound.search.rungs import promoted, rung_epochs
from timm_compound.search.storage import open_storage, redact, scrub
from timm_compound.search.study import DUPLICATE, PARAM, SAME_MODEL, SETTINGS_ATTR, check_settings, duplicate_of
from timm_compound.search.workers import make_pruner, make_sampler
from timm_compound.search.write_rule import write_rule
from timm_compound.train.api import train

runner = CliRunner()
# 1 grid point (1.1, 1.1, 1.2) and the three references; 32 training images, 2 epochs at 32 px
TINY = dict(step=0.1, bounds=(1.1, 1.1, 1.2), epochs=2, resolution=32, train_samples=32, val_samples=32, batch_size=16)
TINY_CLI = [
    "--step",
    "0.1",
    "--bounds",
    "1.1,1.1,1.2",
    "--epochs",
    "2",
    "--resolution",
    "32",
    "--train-samples",
    "32",
    "--val-samples",
    "32",
    "--batch-size",
    "16",
    "--heartbeat",
    "2",
]
CURRENT = "1.2/1.1/1.15"  # the rule's current coefficients: a candidate of every search
KEYS = {"1.1/1.1/1.2", "2/1/1", "1/1.4142/1", "1/1/1.4142", CURRENT}


# --- candidates ---------------------------------------------------------------------------------


def test_default_grid_holds_the_paper_point_and_every_point_meets_the_constraint():
    points = search_points(Grid())
    grid = [p for p in points if p.kind == "grid"]
    assert len(grid) == 63 and len(points) == 66
    assert "1.2/1.1/1.15" in {p.key for p in grid} and PAPER == (1.2, 1.1, 1.15)
    assert all(abs(p.factor / 2 - 1) <= 0.05 + 1e-12 and min(p.coefficients) >= 1 for p in grid)
    assert max(p.alpha for p in grid) == 1.4 and max(p.beta for p in grid) == 1.3 and max(p.gamma for p in grid) == 1.3
    refs = {p.kind: p.coefficients for p in points if p.kind != "grid"}
    assert refs == {"depth": (2.0, 1.0, 1.0), "width": (1.0, math.sqrt(2), 1.0), "resolution": (1.0, 1.0, math.sqrt(2))}


def test_a_small_grid_lists_exactly_the_points_within_tolerance():
    points = grid_points(Grid.checked(step=0.1, bounds=(1.1, 1.2, 1.2)))
    assert [p.coefficients for p in points] == [(1.0, 1.2, 1.2), (1.1, 1.1, 1.2), (1.1, 1.2, 1.1)]
    assert [round(p.factor, 4) for p in points] == [2.0736, 1.9166, 1.9166]


def test_bounds_admitting_no_candidate_name_the_closest_point():
    with pytest.raises(
        CompoundError, match=r"closest is \(1.1, 1.1, 1.1\) with alpha\*beta\^2\*gamma\^2 = 1.6105 \(-19.5%\)"
    ):
        grid_points(Grid.checked(bounds=(1.1, 1.1, 1.1)))
    with pytest.raises(CompoundError, match=r"closest is \(1.2, 1.1, 1.15\) .* 1.9203 \(-4.0%\)"):
        grid_points(Grid.checked(bounds=(1.2, 1.1, 1.15), tolerance=0.01))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(step=0), "step must be > 0"),
        (dict(tolerance=1.0), "tolerance must be in"),
        (dict(bounds=(1.4, 0.9, 1.3)), "bounds.beta must be >= 1"),
        (dict(bounds=(1.4, 1.3)), "bounds must be"),
        (dict(flops_factor=1.0), "flops_factor must be > 1"),
    ],
)
def test_bad_grid_numbers_are_errors(kwargs, message):
    with pytest.raises(CompoundError, match=message):
        Grid.checked(**kwargs)


def test_candidates_are_measured_after_rounding():
    table = candidates("resnet18", bounds=(1.2, 1.1, 1.15), tolerance=0.05)
    paper = table["1.2/1.1/1.15"]
    assert round(paper.nominal, 4) == 1.9203 and round(paper.ratio_native, 3) == 2.409  # rounding: 2.41x, not 1.92x
    assert (
        paper.plan.depths == [3, 3, 3, 3] and paper.plan.widths == [72, 144, 280, 560] and paper.plan.resolution == 256
    )
    depth = table["2/1/1"]
    assert depth.plan.depths == [4, 4, 4, 4] and depth.plan.resolution == 224 and depth.planned_by == "phi"
    assert table.keys == ["1.2/1.1/1.15", "2/1/1", "1/1.4142/1", "1/1/1.4142"]


def test_a_proxy_resolution_below_the_rules_floor_is_refused():
    """At 16 px every resnet18 candidate would round up to 32 px: gamma would be dead, ratios 3-6x."""
    with pytest.raises(CompoundError, match=r"resolution 16 px is below resnet.yaml's resolution.min \(32 px\)"):
        candidates("resnet18", bounds=(1.2, 1.1, 1.15), resolution=16)
    assert candidates("resnet18", bounds=(1.2, 1.1, 1.15), resolution=32)["1/1/1.4142"].train_resolution == 48


def test_a_factor_outside_the_rules_constraint_is_planned_by_explicit_multipliers():
    table = candidates("resnet18", flops_factor=3.0, step=0.1, bounds=(1.2, 1.2, 1.3), tolerance=0.05)
    depth = table["3/1/1"]  # resnet's rule asks for 2 +- 5%: plan(phi, coefficients) would refuse it
    assert depth.planned_by == "multipliers" and depth.plan.phi is None and depth.plan.depths == [6, 6, 6, 6]
    assert depth.plan.multipliers.depth == 3.0
    with pytest.raises(CompoundError, match="match_cost fits each candidate with timm_compound.fit"):
        candidates("resnet18", flops_factor=3.0, step=0.1, bounds=(1.2, 1.2, 1.3), match_cost=True)


def test_match_cost_fits_every_candidate_to_the_nominal_cost():
    table = candidates("resnet18", step=0.1, bounds=(1.1, 1.2, 1.2), match_cost=True)
    for candidate in table.candidates.values():
        assert candidate.planned_by == "fit"
        assert candidate.macs_native <= table.base_macs_native * candidate.nominal  # never above the budget
        assert candidate.ratio_native > 0.9 * candidate.nominal, candidate.key  # and close to it
    plain = candidates("resnet18", step=0.1, bounds=(1.1, 1.2, 1.2))
    assert max(c.ratio_native / c.nominal for c in plain.candidates.values()) > 1.1  # unmatched: up to +x%


# --- a tiny search ------------------------------------------------------------------------------


@contextlib.contextmanager
def one_thread():
    """Tiny trainings run fastest on one thread, and two threads on a shared, busy machine run 5-10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """The CLI runs a tiny search and writes its rule; returns (out, rules folder, output)."""
    root = tmp_path_factory.mktemp("search")
    out, rules = root / "out", root / "rules"
    with one_thread():
        result = runner.invoke(
            app,
            ["search", "resnet18", *TINY_CLI, "--out", str(out), "--write-rule", str(rules), "--force"],
            terminal_width=200,
        )
    assert result.exit_code == 0, result.output
    return out, rules, result.output


def _trials(out):
    storage = optuna.storages.RDBStorage(f"sqlite:///{out / 'study.db'}")
    return optuna.load_study(study_name="resnet18-coefficients", storage=storage).get_trials()


def _control(trials) -> str:
    """The candidate whose training stands for the rule's current coefficients: theirs, or their twin's."""
    current = next(t for t in trials if t.params[PARAM] == CURRENT)
    if SAME_MODEL not in current.user_attrs:
        return CURRENT
    return next(t for t in trials if t.number == current.user_attrs[SAME_MODEL]).params[PARAM]


def _rung_trials(out, rung: int):
    name = "resnet18-coefficients" + ("" if rung == 0 else f":rung-{rung}")
    return optuna.load_study(study_name=name, storage=f"sqlite:///{out / 'study.db'}").get_trials()


def test_the_search_trains_every_candidate_once_and_reports_it(searched):
    """Successive halving over 2 epochs: every candidate trains epoch 1 (rung 0); the best ceil(5/3) = 2
    continue to epoch 2 in the rung-1 study, and the rule's current coefficients with them (the control
    the winner is tested against); each rung trial reports only the epochs it trained."""
    out, _, output = searched
    trials, rung1 = _trials(out), _rung_trials(out, 1)
    assert sorted(t.params[PARAM] for t in trials) == sorted(KEYS)  # one trial each, nothing repeated
    trained = [t for t in trials if SAME_MODEL not in t.user_attrs]  # at 32 px the current coefficients round
    assert len(trained) == 4  # to the model of 1.1/1.1/1.2: one training
    assert all(t.state.name == "COMPLETE" and list(t.intermediate_values) == [1] for t in trained)
    ranked = sorted(trained, key=lambda t: (-t.value, t.user_attrs["eval_loss"]))
    continued = {t.params[PARAM] for t in ranked[:2]} | {_control(trials)}  # ceil(4 / 3) = 2, and the control
    assert {t.params[PARAM] for t in rung1} == continued
    assert all(t.state.name == "COMPLETE" and list(t.intermediate_values) == [2] for t in rung1)
    record = json.loads((out / "search.json").read_text())
    assert record["complete"] and record["trials"] == 5 + len(rung1) and record["epochs_spent"] == 4 + len(rung1)
    best = max(rung1, key=lambda t: t.value)
    assert record["best"]["key"] == best.params[PARAM] and record["best"]["top1"] == best.value
    assert f"best: alpha={record['best']['alpha']:g}" in output or "no winner: every candidate is at chance" in output
    assert "trial 0 " in output
    assert f"rung 1: {len(rung1)} candidate(s) continue to epoch 2" in output
    rows = list(csv.DictReader(open(out / "trials.csv")))
    assert {row["key"] for row in rows} == KEYS
    assert set(rows[0]) >= {
        "alpha",
        "beta",
        "gamma",
        "nominal",
        "gmacs",
        "ratio",
        "params",
        "epochs_run",
        "state",
        "top1",
    }
    by_key = {row["key"]: row for row in rows}
    assert by_key["1/1/1.4142"]["train_resolution"] == "48" and by_key["2/1/1"]["depths"] == "4 4 4 4"
    assert by_key[CURRENT]["kind"] == "current" and by_key[CURRENT]["shared_with"] == _control(trials)
    assert {k: (r["state"], r["epochs_run"], r["rung"]) for k, r in by_key.items() if k != CURRENT} == {
        k: ("complete", "2", "1") if k in continued else ("pruned", "1", "0") for k in KEYS - {CURRENT}
    }
    for name in ("plane.png", "gmacs.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_search_says_how_sure_it_is(searched):
    """Every trial keeps its per-image results; the winner is tested against chance, the runner-up and the
    rule's current coefficients on the final rung; this tiny search is at chance level and says so."""
    out, _, output = searched
    rung1 = {t.params[PARAM]: t for t in _rung_trials(out, 1)}
    for trial in [t for t in [*_trials(out), *rung1.values()] if SAME_MODEL not in t.user_attrs]:
        bits = trial.user_attrs["correct"]
        assert bits["images"] == 32 and bits["epoch"] == trial.user_attrs["reached"]
        assert 100 * decode(bits).mean() == pytest.approx(trial.value)  # the per-image results give the top-1
    record = json.loads((out / "search.json").read_text())["confidence"]
    assert record["winner"] == json.loads((out / "search.json").read_text())["best"]["key"]
    assert record["chance"] == pytest.approx(100 * 4 / 32) or record["chance"] >= 10  # most frequent of 32 digits
    assert record["at_chance"] == (record["p_chance"] >= 0.05)
    assert record["runner_up"]["key"] in rung1 and record["current"]["key"] == CURRENT
    if record["winner"] == _control(_trials(out)):  # the current coefficients round to the winner's model
        assert record["current"]["note"] == "the same trained model as the winner (they round alike)"
    for versus in (record["runner_up"], record["current"]):
        assert versus["p"] is not None or versus["note"]
        if versus["p"] is not None:
            assert "McNemar" in versus["test"] and versus["p_holm"] >= versus["p"]
    text = " ".join(output.split())
    if record["at_chance"]:  # no winner to test against anything
        assert "at chance level: the best top-1" in text and "no winner: every candidate is at chance level" in text
    else:
        assert "against the runner-up" in text and "against the rule's current coefficients" in text


def test_successive_halving_continues_the_best_third_from_checkpoints(searched):
    """The 2 best of rung 0 (top-1, then validation loss) continue from their checkpoints, and resuming
    changes nothing: epoch 2 equals an uninterrupted 2-epoch training. The stopped candidates keep only
    their metrics (run.json, metrics.csv, predictions.csv), no weights or checkpoints."""
    out, _, _ = searched
    rung0 = sorted(
        [t for t in _trials(out) if SAME_MODEL not in t.user_attrs], key=lambda t: (-t.value, t.user_attrs["eval_loss"])
    )
    rung1 = {t.params[PARAM]: t for t in _rung_trials(out, 1)}
    assert set(rung1) == {t.params[PARAM] for t in rung0[:2]} | {_control(_trials(out))}
    runs = out / "runs" / "resnet18-coefficients"
    assert sorted(p.name for p in runs.iterdir()) == sorted(k.replace("/", "_") for k in KEYS - {CURRENT})
    for key in KEYS - {CURRENT}:  # the current coefficients trained nothing of their own (a twin's model)
        folder = runs / key.replace("/", "_")
        assert (folder / "metrics.csv").is_file() and (folder / "predictions.csv").is_file()
        assert (folder / "best.safetensors").is_file() == (folder / "last").is_dir() == (key in rung1), key
    key = rung0[0].params[PARAM]
    table = candidates("resnet18", step=0.1, bounds=(1.1, 1.1, 1.2), resolution=32)
    with one_thread():
        straight = train(
            table[key].plan,
            epochs=2,
            resolution=table[key].train_resolution,
            progress=False,
            seed=0,
            **{k: TINY[k] for k in ("train_samples", "val_samples", "batch_size")},
        )
    assert (
        straight.history[0].top1 == rung0[0].value and straight.history[0].eval_loss == rung0[0].user_attrs["eval_loss"]
    )
    assert straight.history[1].top1 == rung1[key].value
    assert straight.history[1].eval_loss == pytest.approx(rung1[key].user_attrs["eval_loss"], rel=1e-6)
    assert json.loads((runs / key.replace("/", "_") / "run.json").read_text())["epochs_completed"] == 2


def test_rung_epochs_and_promotion():
    assert [rung_epochs(e) for e in (1, 2, 3, 5, 9, 10)] == [[1], [1, 2], [1, 3], [1, 3, 5], [1, 3, 9], [1, 3, 9, 10]]
    # successive halving's rungs stop trials themselves; asha is Optuna's asynchronous pruner
    assert isinstance(make_pruner("successive_halving", 9), optuna.pruners.NopPruner)
    assert isinstance(make_pruner("asha", 9), optuna.pruners.SuccessiveHalvingPruner)
    table = candidates("resnet18", step=0.1, bounds=(1.1, 1.1, 1.2), resolution=32)  # 4 candidates
    study = optuna.create_study(direction="maximize")
    dist = optuna.distributions.CategoricalDistribution(table.keys)

    def add(key, value, loss, **attrs):
        study.add_trial(
            optuna.trial.create_trial(
                params={PARAM: key}, distributions={PARAM: dist}, value=value, user_attrs={"eval_loss": loss, **attrs}
            )
        )

    a, b, c, d, current = table.keys
    assert current == CURRENT
    add(a, 50.0, 1.0)
    add(b, 60.0, 2.0)
    add(c, 60.0, 1.5)  # ties b on top-1: lower validation loss first
    add(d, 60.0, 0.1, same_model_as=1)  # took b's result: not a model of its own
    assert promoted(study.trials, table) == [c]  # ceil(3 trained / 3) = 1
    add(d, 55.0, 3.0)
    assert promoted(study.trials, table) == [b, c]  # ceil(4 / 3) = 2, in table order
    assert promoted(study.trials, table, control=current) == [b, c]  # the control continues only if it trained
    add(current, 10.0, 9.0)
    assert promoted(study.trials, table, control=current) == [b, c, current]  # ceil(5 / 3) = 2, and the control


def test_running_the_same_search_again_resumes_it_and_trains_nothing(searched):
    out, _, _ = searched
    before = len(_trials(out))
    result = search("resnet18", "builtin:digits", out=out, heartbeat=2, **TINY)
    assert len(_trials(out)) == before and result.complete
    assert result.best.key == json.loads((out / "search.json").read_text())["best"]["key"]


@pytest.mark.parametrize(
    "change, field",
    [
        (dict(base="resnet34"), "base"),
        (dict(step=0.05), "grid"),
        (dict(train_samples=128), "train"),
        (dict(epochs=3), "epochs"),
        (dict(pruner="none"), "pruner"),
    ],
)
def test_a_study_created_for_another_search_is_refused(searched, change, field):
    out, _, _ = searched
    kwargs = {**TINY, **change}
    base = kwargs.pop("base", "resnet18")
    with pytest.raises(
        CompoundError,
        match=rf"study 'resnet18-coefficients' in sqlite:///.* was created for another "
        rf"search \(.*{field}: the study has",
    ):
        search(base, out=out, study="resnet18-coefficients", **kwargs)


def test_a_study_created_for_another_dataset_is_refused(searched):
    out, _, _ = searched
    study = optuna.load_study(study_name="resnet18-coefficients", storage=f"sqlite:///{out / 'study.db'}")
    recorded = study.user_attrs[SETTINGS_ATTR]
    assert recorded["data"] == "builtin:digits" and recorded["base"] == "resnet18"
    check_settings(study, recorded, "resnet18-coefficients", "shown")  # the same search: accepted
    with pytest.raises(
        CompoundError,
        match=r"study 'resnet18-coefficients' in shown was created for another search "
        r"\(data: the study has 'builtin:digits', this search 'my/images'\)",
    ):
        check_settings(study, {**recorded, "data": "my/images"}, "resnet18-coefficients", "shown")


def test_tpe_with_hyperband_trains_its_budget_of_distinct_candidates(tmp_path):
    with one_thread():
        result = search("resnet18", out=tmp_path, sampler="tpe", trials=1, pruner="hyperband", heartbeat=2, **TINY)
    trials = optuna.load_study(study_name="resnet18-coefficients", storage=f"sqlite:///{tmp_path / 'study.db'}").trials
    assert len(trials) == 1 and trials[0].state.name == "COMPLETE" and trials[0].params[PARAM] in KEYS
    assert result.complete and result.epochs_spent == 2 and result.best.key == trials[0].params[PARAM]
    assert sorted(row.state for row in result.rows) == ["complete"] + ["not started"] * 4
    assert (
        result.settings["sampler"] == "tpe"
        and result.settings["pruner"] == "hyperband"
        and result.settings["budget"] == 1
    )


def test_tpe_picks_the_first_rung_and_successive_halving_continues_the_best(tmp_path):
    """TPE proposes `trials` candidates for rung 0; the best ceil(2/3) = 1 of them continues to epoch 2."""
    with one_thread():
        result = search("resnet18", out=tmp_path, sampler="tpe", trials=2, heartbeat=2, **TINY)
    assert result.complete and result.epochs_spent == 2 + 1 and result.trials == 3
    assert sorted((row.state, row.epochs_run) for row in result.rows) == [
        ("complete", 2),
        ("not started", 0),
        ("not started", 0),
        ("not started", 0),
        ("pruned", 1),
    ]
    assert result.best.rung == 1 and (tmp_path / "runs" / "resnet18-coefficients").is_dir()


def test_the_written_rule_replaces_the_shipped_one_through_the_rules_path(searched):
    out, rules, output = searched
    best = json.loads((out / "search.json").read_text())["best"]
    path = rules / "resnet_searched.yaml"
    assert f"wrote {path}" in " ".join(output.split())
    architectures = "resnet18, resnet34, resnet50, resnet101, resnext50_32x4d"
    assert f"it replaces the coefficients of {architectures}" in " ".join(output.split())
    data = yaml.safe_load(path.read_text())
    assert data["family"] == "resnet_searched" and data["replaces"] == "resnet"
    assert data["coefficients"] == {"alpha": best["alpha"], "beta": best["beta"], "gamma": best["gamma"]}
    assert data["architectures"] == ["resnet18", "resnet34", "resnet50", "resnet101", "resnext50_32x4d"]
    assert data["overrides"] == {"resnext50_32x4d": {"width": {"divisor": 16, "min": 16}}}
    code = (
        "import timm, timm_compound; m = timm.create_model('resnet18_cs_phi2', device='meta'); p = m.compound_plan; "
        "print(p.rule_file, p.coefficients.alpha, p.coefficients.beta, p.coefficients.gamma, p.phi)"
    )
    env = {**os.environ, "TIMM_COMPOUND_RULES_PATH": str(rules)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["resnet_searched.yaml", *(str(best[k]) for k in ("alpha", "beta", "gamma")), "2.0"]


def test_write_rule_reads_a_search_folder_and_refuses_an_empty_one(searched, tmp_path):
    out, rules, _ = searched
    assert (
        write_rule(out, tmp_path / "again", force=True).read_text().split("\n", 2)[2]
        == (rules / "resnet_searched.yaml").read_text().split("\n", 2)[2]
    )
    with pytest.raises(CompoundError, match="not a search result"):
        write_rule(tmp_path, tmp_path / "r")


def test_write_rule_refuses_a_winner_that_did_not_earn_it(searched, tmp_path):
    """Without --force: a winner at chance level, or not significantly better than the current coefficients,
    is refused, naming every architecture the rule would change; nothing is written."""
    out, _, _ = searched
    record = json.loads((out / "search.json").read_text())
    architectures = "resnet18, resnet34, resnet50, resnet101, resnext50_32x4d"
    at_chance = {**record, "confidence": {**record["confidence"], "at_chance": True, "top1": 18.75, "chance": 12.5}}
    with pytest.raises(CompoundError, match=rf"at chance level \(top-1 18.75% against 12.5% chance\).*{architectures}"):
        write_rule(at_chance, tmp_path / "r")
    current = {**record["confidence"]["current"], "diff_mean": 1.5, "p_holm": 0.4, "significant": False}
    close = {
        **record,
        "confidence": {**record["confidence"], "at_chance": False, "better_than_current": False, "current": current},
    }
    with pytest.raises(
        CompoundError,
        match=rf"not significantly better than the rule's current coefficients "
        rf"{CURRENT} \(\+1.50 points, Holm-corrected p=0.4\); it would replace the "
        rf"coefficients of {architectures}; pass --force",
    ):
        write_rule(close, tmp_path / "r")
    with pytest.raises(CompoundError, match="recorded no significance test"):
        write_rule({**record, "confidence": None}, tmp_path / "r")
    assert not (tmp_path / "r").exists()
    earned = {**record, "confidence": {**close["confidence"], "better_than_current": True}}
    assert write_rule(earned, tmp_path / "r").is_file()
    code = runner.invoke(
        app,
        ["search", "resnet18", *TINY_CLI, "--out", str(out), "--write-rule", str(tmp_path / "c")],
        terminal_width=200,
    )
    assert code.exit_code == 1 and architectures in " ".join(code.output.split()) and not (tmp_path / "c").exists()


# --- GridSampler hands a running point out twice: the guard -------------------------------------


def test_grid_sampler_repeats_a_running_point_and_the_later_trial_defers():
    keys = ["a", "b"]
    study = optuna.create_study(direction="maximize", sampler=make_sampler("grid", keys, seed=0))
    running = study.ask()  # a worker holds one point...
    held = running.suggest_categorical(PARAM, keys)
    seen = []

    def objective(trial):
        key = trial.suggest_categorical(PARAM, keys)
        holder = duplicate_of(trial, key, study.get_trials(deepcopy=False))
        seen.append((key, None if holder is None else holder.number))
        if holder is not None:  # as the search's objective does: marked, not trained
            trial.set_user_attr(DUPLICATE, holder.number)
            raise optuna.TrialPruned()
        return 1.0

    study.optimize(objective, n_trials=1)  # ...another evaluates the other point...
    study.optimize(objective, n_trials=1)  # ...and, every point started, GridSampler hands the held one out again
    assert seen == [(next(k for k in keys if k != held), None), (held, running.number)]
    trials = study.get_trials(deepcopy=False)
    assert duplicate_of(trials[running.number], held, trials) is None  # the earlier trial keeps its point


def test_a_candidate_whose_trial_raises_twice_is_queued_again_until_it_trains(tmp_path, monkeypatch):
    """Two trials in a row raise (a full disk did this): the candidate is queued again each time and the
    search completes; Optuna's GridSampler alone ended it with KeyError('grid_id') (queued trials have no grid id)."""
    from timm_compound.train import api as train_api

    real, calls = train_api.train, []

    @functools.wraps(real)
    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) in (3, 4):
            raise RuntimeError("No space left on device (simulated)")
        return real(*args, **kwargs)

    monkeypatch.setattr(train_api, "train", flaky)
    with one_thread():
        result = search("resnet18", out=tmp_path, pruner="none", heartbeat=2, **{**TINY, "epochs": 1})
    assert result.complete and len(calls) == 6  # 4 models (the current coefficients share one) + 2 failures
    assert sorted(row.attempts for row in result.rows) == [1, 1, 1, 1, 3] and {row.state for row in result.rows} == {
        "complete"
    }


# --- bad input ----------------------------------------------------------------------------------


def test_zero_workers_a_base_without_a_rule_and_a_variant_are_errors(tmp_path):
    with pytest.raises(CompoundError, match="workers must be a whole number >= 1, got 0"):
        search("resnet18", out=tmp_path, workers=0)
    with pytest.raises(
        UnknownModelError, match="search scales a base a rule covers: no rule covers 'vit_tiny_patch16_224'"
    ):
        search("vit_tiny_patch16_224", out=tmp_path)
    with pytest.raises(UnknownModelError, match="no rule covers 'resnet18_cs_phi2'"):
        search("resnet18_cs_phi2", out=tmp_path)
    with pytest.raises(CompoundError, match="trials sets the TPE sampler's budget"):
        search("resnet18", out=tmp_path, trials=3, **TINY)
    with pytest.raises(CompoundError, match="unknown training argument"):
        search("resnet18", out=tmp_path, learning_rate=0.1)
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_storage_errors_name_the_url_without_its_password(tmp_path):
    secret = "hunter2-secret"
    cases = [
        (
            f"postgresql://me:{secret}@127.0.0.1:1/db",
            r"cannot reach storage postgresql://me:\*\*\*@127.0.0.1:1/db: .*refused",
        ),
        (
            f"mysql://me:{secret}@127.0.0.1/db",
            r"storage mysql://me:\*\*\*@127.0.0.1/db: its database driver 'MySQLdb' is not installed",
        ),
        (
            f"postgresql+psycopg2://me:{secret}@127.0.0.1:1/db",
            r"driver 'psycopg2' is not installed \(pip install 'timm-compound\[postgres\]'\)",
        ),
        (f"nosuchdb://me:{secret}@host/db", r"SQLAlchemy knows no database kind 'nosuchdb'"),
    ]
    for url, message in cases:
        with pytest.raises(CompoundError, match=message) as caught:
            open_storage(url)
        assert secret not in str(caught.value)
    with pytest.raises(CompoundError, match=r"cannot reach storage postgresql://me:\*\*\*@127.0.0.1:1/db") as caught:
        search("resnet18", storage=cases[0][0], **TINY)
    assert secret not in str(caught.value)


def test_redact_and_scrub():
    url = "postgresql://me:p%40ss@db.example:5432/search"
    assert redact(url) == "postgresql://me:***@db.example:5432/search"
    assert redact("sqlite:////tmp/study.db") == "sqlite:////tmp/study.db"
    assert (
        scrub(f"failed for {url}: password p@ss and p%40ss rejected", url)
        == "failed for postgresql://me:***@db.example:5432/search: password *** and *** rejected"
    )


def test_cli_lists_candidates_and_fails_without_a_traceback(tmp_path):
    result = runner.invoke(
        app, ["search", "resnet18", "--dry-run", "--step", "0.1", "--bounds", "1.1,1.2,1.2"], terminal_width=200
    )
    assert result.exit_code == 0, result.output
    assert "resnet18 at phi=1: 7 candidates" in result.output and "4·4·4·4" in result.output  # 6 and the rule's
    result = runner.invoke(app, ["search", "resnet18", "--workers", "0", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "error: workers must be a whole number >= 1, got 0" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["search", "resnet18", "--bounds", "1.1,1.1,1.1", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "the closest is (1.1, 1.1, 1.1)" in " ".join(result.output.split())
    result = runner.invoke(
        app,
        [
            "search",
            "resnet18",
            *TINY_CLI,
            "--storage",
            "postgresql://me:pw-xyz@127.0.0.1:1/db",
            "--out",
            str(tmp_path / "pg"),
        ],
    )
    assert (
        result.exit_code == 1
        and "postgresql://me:***@127.0.0.1:1/db" in result.output
        and "pw-xyz" not in result.output
    )


def _racing_storage(monkeypatch, message: str):
    """RDBStorage whose first construction fails as a worker that lost the race to create the tables does."""
    import sqlalchemy.exc

    real, calls = optuna.storages.RDBStorage, []

    @functools.wraps(real)  # keeps RDBStorage's signature, which open_storage reads
    def storage(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise sqlalchemy.exc.OperationalError("CREATE TABLE trial_system_attributes", {}, Exception(message))
        return real(*args, **kwargs)

    monkeypatch.setattr(optuna.storages, "RDBStorage", storage)
    return calls


def test_a_worker_that_loses_the_race_to_create_the_tables_opens_the_storage(tmp_path, monkeypatch):
    calls = _racing_storage(monkeypatch, "table trial_system_attributes already exists")
    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}")
    assert len(calls) == 2 and storage.get_all_studies() == []


def test_other_database_errors_are_not_retried(tmp_path, monkeypatch):
    calls = _racing_storage(monkeypatch, "disk I/O error")
    with pytest.raises(CompoundError, match="cannot reach storage sqlite:///.*disk I/O error"):
        open_storage(f"sqlite:///{tmp_path / 'study.db'}")
    assert len(calls) == 1
