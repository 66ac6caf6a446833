"""The coefficient search across processes: two workers on a real PostgreSQL server, and a worker
killed with SIGKILL mid-trial whose trial is retried when the search resumes (SQLite)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState
from postgres_server import PASSWORD, PostgresServer, server_binaries
from test_search import CURRENT, KEYS, TINY, TINY_CLI, one_thread

from timm_compound.search.api import search
from timm_compound.search.storage import with_driver
from timm_compound.search.study import DUPLICATE, PARAM, SAME_MODEL

TRAINED = KEYS - {CURRENT}  # at the 32 px proxy the rule's current coefficients round to 1.1/1.1/1.2's model


BINARIES = server_binaries()


@pytest.fixture
def postgres():
    if BINARIES is None:
        pytest.skip(
            "no PostgreSQL server binaries (initdb, pg_ctl) on this machine: `make system-deps` installs "
            "Debian's postgresql package with apt"
        )
    server = PostgresServer.start(BINARIES)
    yield server
    server.stop()


def _trained(trials):
    """Trials that trained their candidate (not a duplicate, not a same-model twin)."""
    return [t for t in trials if DUPLICATE not in t.user_attrs and SAME_MODEL not in t.user_attrs]


def test_two_workers_on_postgresql_evaluate_every_grid_point_exactly_once(postgres, tmp_path, capfd):
    lines: list[str] = []
    result = search(
        "resnet18",
        storage=postgres.url,
        study="distributed",
        workers=2,
        out=tmp_path,
        heartbeat=2,
        say=lines.append,
        **TINY,
    )
    trials = optuna.load_study(study_name="distributed", storage=with_driver(postgres.url)).trials
    finished = [t for t in _trained(trials) if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert sorted(t.params[PARAM] for t in finished) == sorted(TRAINED)  # each model evaluated once
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    assert result.complete and {row.state for row in result.rows} <= {"complete", "pruned"}
    assert any(line.startswith("[worker 1] done") for line in lines)
    assert any(line.startswith("[worker 2] done") for line in lines)
    assert len({t.user_attrs["worker"] for t in trials}) == 2, [t.user_attrs["worker"] for t in trials]
    rung1 = optuna.load_study(study_name="distributed:rung-1", storage=with_driver(postgres.url)).trials
    continued = [t for t in _trained(rung1) if t.state == TrialState.COMPLETE]  # both workers computed the same ones
    assert sorted(t.params[PARAM] for t in continued) == sorted(
        r.key for r in result.rows if r.rung == 1 and r.shared_with is None
    ) and len(continued) in (2, 3)
    record = json.loads((tmp_path / "search.json").read_text())
    assert record["storage"] == f"postgresql://searcher:***@127.0.0.1:{postgres.port}/postgres"
    printed = capfd.readouterr()
    for text in (*lines, printed.out, printed.err, (tmp_path / "search.json").read_text()):
        assert PASSWORD not in text


def _study_when_ready(url: str, deadline: float, process: subprocess.Popen, name: str = "resnet18-coefficients"):
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read()
        try:
            return optuna.load_study(study_name=name, storage=url)
        except (KeyError, Exception):  # no file, no tables or no study yet
            time.sleep(0.5)
    pytest.fail("the worker never created its study")


def _kill_worker_when(out, study_name: str, running, *args: str):
    """Start `timm-compound search` (TINY) in a child, wait until `running(trials)` of study `study_name`
    names a trial, SIGKILL the child then; returns (the study, that trial)."""
    command = [
        sys.executable,
        "-m",
        "timm_compound",
        "search",
        "resnet18",
        *TINY_CLI,
        "--heartbeat",
        "1",
        *args,
        "--out",
        str(out),
        "--quiet",
    ]
    worker = subprocess.Popen(
        command,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    try:
        study = _study_when_ready(f"sqlite:///{out / 'study.db'}", deadline, worker, study_name)
        while time.monotonic() < deadline:
            assert worker.poll() is None, worker.stderr.read()
            found = running(study.get_trials())
            if found:
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"no trial of {study_name} was running in time")
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    finally:
        if worker.poll() is None:
            worker.kill()
    return study, found[0]


def test_a_worker_killed_mid_trial_leaves_a_trial_the_resumed_search_retries(tmp_path):
    out = tmp_path / "out"
    # a trial that has trained one epoch of two: mid-trial
    study, killed = _kill_worker_when(
        out,
        "resnet18-coefficients",
        lambda trials: [t for t in trials if t.state == TrialState.RUNNING and t.intermediate_values],
        "--pruner",
        "none",
    )
    before = {t.number: t for t in study.get_trials()}
    assert before[killed.number].state == TrialState.RUNNING  # nothing marked it: the worker simply vanished

    with one_thread():
        result = search("resnet18", out=out, heartbeat=1, pruner="none", **TINY)
    trials = study.get_trials()
    assert trials[killed.number].state == TrialState.FAIL
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == killed.number]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert retries[0].params[PARAM] == killed.params[PARAM]
    complete = [t for t in _trained(trials) if t.state == TrialState.COMPLETE]
    assert sorted(t.params[PARAM] for t in complete) == sorted(TRAINED)  # none lost, none repeated
    for number, trial in before.items():  # finished before the kill: kept
        if trial.state == TrialState.COMPLETE:
            assert trials[number].state == TrialState.COMPLETE and trials[number].value == trial.value
    assert result.complete and all(row.state == "complete" for row in result.rows)
    assert result.epochs_spent == 2 * len(TRAINED) + len(killed.intermediate_values)  # the killed trial's epoch counts


def test_a_worker_killed_in_a_later_rung_is_retried_from_its_checkpoint(tmp_path):
    """Successive halving: kill the worker while a rung-1 trial runs; the resumed search retries that
    candidate from its epoch-1 checkpoint (its retry trains epoch 2 only, or nothing if epoch 2 was saved)."""
    out = tmp_path / "out"
    # a running trial that has chosen its candidate and is training it (a trial just created has no params yet)
    rung1, killed = _kill_worker_when(
        out,
        "resnet18-coefficients:rung-1",
        lambda trials: [
            t for t in trials if t.state == TrialState.RUNNING and PARAM in t.params and "plan" in t.user_attrs
        ],
    )
    with one_thread():
        result = search("resnet18", out=out, heartbeat=1, **TINY)
    trials = rung1.get_trials()
    assert trials[killed.number].state == TrialState.FAIL
    retry = next(t for t in trials if t.system_attrs.get("failed_trial") == killed.number)
    assert retry.state == TrialState.COMPLETE and retry.params[PARAM] == killed.params[PARAM]
    assert retry.user_attrs["reached"] == 2 and set(retry.intermediate_values) <= {2}  # never epoch 1 again
    assert result.complete and sorted(r.key for r in result.rows if r.rung == 1 and r.shared_with is None) == sorted(
        t.params[PARAM] for t in _trained(trials) if t.state == TrialState.COMPLETE
    )
