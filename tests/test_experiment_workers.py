"""Experiments with seeds, shared by workers: two worker processes on one SQLite ledger and one folder
(a `--versus` experiment with 2 seeds), a worker killed with SIGKILL whose run another worker takes over
and resumes, two `--workers` processes on a real PostgreSQL server, `experiment report`, and bad input."""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from postgres_server import PASSWORD, PostgresServer, server_binaries
from rich.console import Console
from test_experiment import cli, flat, threads  # noqa: F401 - threads: the module fixture (torch on one thread)

import timm_compound as tc
from timm_compound.experiment.ledger import Ledger
from timm_compound.storage.database import open_engine

BASE = "convnext_atto"
TINY = [
    "--epochs",
    "1",
    "--resolution",
    "32",
    "--train-samples",
    "64",
    "--val-samples",
    "64",
    "--batch-size",
    "32",
    "--cam-images",
    "0",
]
TINY_API = dict(epochs=1, resolution=32, train_samples=64, val_samples=64, batch_size=32, cam_images=0)
VERSUS = ["--versus", "resnet10t@32", "--seeds", "2"]
KEYS = {"budget", "a", "b", "diff_mean", "diff_ci", "p", "p_holm", "significant", "test"}
BINARIES = server_binaries()


def _worker(out, url, *extra) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "timm_compound",
        "experiment",
        BASE,
        *TINY,
        *extra,
        "--storage",
        url,
        "--out",
        str(out),
        "--quiet",
    ]
    return subprocess.Popen(
        command, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _ledger(url: str) -> list[dict]:
    return Ledger(open_engine(url), url).rows()


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """Two worker processes started together on one SQLite ledger and one folder: convnext_atto compound-scaled
    to resnet10t's cost at 32 px, beside resnet10t, 2 seeds each: 4 runs."""
    root = tmp_path_factory.mktemp("shared")
    out, url = root / "exp", f"sqlite:///{root / 'ledger.db'}"
    workers = [_worker(out, url, *VERSUS) for _ in range(2)]
    outputs = [worker.communicate(timeout=600) for worker in workers]
    for worker, (_stdout, stderr) in zip(workers, outputs):
        assert worker.returncode == 0, stderr
    return out, url, [stdout for stdout, _ in outputs]


def test_two_workers_train_every_run_exactly_once(shared):
    out, url, outputs = shared
    rows = _ledger(url)
    assert sorted((row["name"], row["seed"]) for row in rows) == [
        ("2x-compound", 0),
        ("2x-compound", 1),
        ("ref-resnet10t", 0),
        ("ref-resnet10t", 1),
    ]
    assert all(row["state"] == "done" and row["claims"] == 1 and row["epochs_trained"] == 1 for row in rows), rows
    for row in rows:
        folder = out / "runs" / row["name"] / f"seed-{row['seed']}"
        record = json.loads((folder / "run.json").read_text())
        assert record["status"] == "completed" and record["config"]["seed"] == row["seed"]
        assert (folder / "predictions.csv").is_file() and not (folder / "last" / "state.pt").exists()
    for output in outputs:  # each worker found everything done and wrote the report (atomically)
        assert "verdict at 2x the base's GMACs:" in flat(output) and "report:" in output


def test_the_results_hold_every_statistic(shared):
    out, _, _ = shared
    saved = json.loads((out / "results.json").read_text())
    assert saved["seeds"] == [0, 1] and saved["settings"]["versus"] == "resnet10t@32"
    assert saved["settings"]["budgets"] == [2.0] and saved["settings"]["strategies"] == ["compound"]
    assert not saved["settings"]["include_base"]
    for row in saved["rows"]:
        assert len(row["top1"]) == 2 and row["top1_mean"] == pytest.approx(sum(row["top1"]) / 2)
        assert row["top1_ci"][0] <= row["top1_mean"] <= row["top1_ci"][1] and row["top1_sd"] >= 0
        for seed, run in zip((0, 1), row["runs"]):  # each seed's top-1 is its predictions.csv's share right
            with open(out / "runs" / row["name"] / f"seed-{seed}" / "predictions.csv", newline="") as handle:
                right = [int(line["correct"]) for line in csv.DictReader(handle)]
            assert len(right) == 64 and run["top1"] == pytest.approx(100 * sum(right) / 64)
    (comparison,) = saved["comparisons"]
    assert set(comparison) >= KEYS and (comparison["a"], comparison["b"]) == ("2x-compound", "ref-resnet10t")
    assert (
        comparison["p_holm"] == comparison["p"] and "two-way bootstrap over 64 images and 2 seeds" in comparison["test"]
    )
    assert comparison["significant"] == (comparison["p_holm"] < 0.05)
    verdict = saved["verdict"]["2"]
    assert "resnet10t" in verdict and "2 seeds" in verdict and "seed-to-seed spread is" in verdict
    assert "| 2x | 2x-compound | ref-resnet10t |" in (out / "table.md").read_text()


def test_experiment_report_rewrites_the_report_from_the_folder(shared):
    out, _, _ = shared
    before = json.loads((out / "results.json").read_text())
    (out / "report.html").unlink()
    code, output = cli("experiment", "report", "--out", out)
    assert code == 0, output
    assert "experiment report: 4 of 4 runs finished" in flat(output) and (out / "report.html").is_file()
    after = json.loads((out / "results.json").read_text())
    assert after["comparisons"] == before["comparisons"] and after["verdict"] == before["verdict"]


def test_a_storage_holding_another_experiment_is_refused_unchanged(shared, tmp_path):
    _, url, _ = shared
    before = _ledger(url)
    code, output = cli(
        "experiment", BASE, *TINY, "--epochs", "2", *VERSUS, "--storage", url, "--out", tmp_path / "other"
    )
    assert (
        code == 1
        and "holds a different experiment (epochs: storage 1, asked 2): refused, nothing was changed" in flat(output)
    ), output
    assert _ledger(url) == before and not (tmp_path / "other").exists()


def test_a_killed_worker_s_run_is_taken_over_and_resumed(tmp_path, threads):  # noqa: F811
    out, url = tmp_path / "exp", f"sqlite:///{tmp_path / 'ledger.db'}"
    arguments = ["--strategies", "compound", "--budgets", "2", "--no-base", "--heartbeat", "1"]
    worker = _worker(out, url, *arguments[:-2], "--heartbeat", "1", "--epochs", "2")
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:  # wait until epoch 1 of the run is saved, then kill the worker
            assert worker.poll() is None, worker.communicate()[1]
            try:
                rows = _ledger(url)
            except tc.CompoundError:
                rows = []
            if rows and rows[0]["epochs_trained"] >= 1:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the worker never finished epoch 1")
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    finally:
        if worker.poll() is None:
            worker.kill()
    (killed,) = _ledger(url)
    run_dir = out / "runs" / "2x-compound"
    epoch1 = (run_dir / "metrics.csv").read_text().splitlines()[1]
    if killed["state"] == "done":
        pytest.skip("the worker finished epoch 2 before the kill reached it")
    assert killed["state"] == "running" and killed["epochs_trained"] == 1
    result = tc.experiment(
        BASE,
        budgets=(2,),
        strategies=("compound",),
        include_base=False,
        storage=url,
        heartbeat=1,
        out=out,
        console=Console(file=open(os.devnull, "w")),
        **{**TINY_API, "epochs": 2},
    )
    (taken,) = _ledger(url)
    assert taken["state"] == "done" and taken["claims"] == 2 and taken["epochs_trained"] == 2  # epoch 1 not redone
    lines = (run_dir / "metrics.csv").read_text().splitlines()
    assert len(lines) == 3 and lines[1] == epoch1  # the epoch before the kill kept as it was
    assert result.row("2x-compound").runs[0].status == "completed"


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


def test_two_workers_on_postgresql(postgres, tmp_path, capfd):
    """`workers=2`: this process trains as worker 1 (its torch threads given back after) beside one spawned worker."""
    import torch

    threads_before = torch.get_num_threads()
    lines = []
    console = Console(file=open(os.devnull, "w"))
    console.print = lambda text, **_: lines.append(str(text))  # every line the experiment says
    result = tc.experiment(
        BASE,
        budgets=(2,),
        strategies=("compound",),
        storage=postgres.url,
        workers=2,
        keep_checkpoints=True,
        out=tmp_path / "exp",
        console=console,
        **TINY_API,
    )
    rows = _ledger(postgres.url)
    assert len(rows) == 2 and all(
        row["state"] == "done" and row["claims"] == 1 and row["epochs_trained"] == 1 for row in rows
    )
    assert any(line.startswith("[worker 1] done") for line in lines) and any(
        line.startswith("[worker 2] done") for line in lines
    )
    assert f"{socket.gethostname()}:{os.getpid()}" in {row["worker"] for row in rows}  # it claimed the first run
    assert torch.get_num_threads() == threads_before
    assert [row.status for row in result.rows] == ["completed"] * 2
    assert (tmp_path / "exp" / "runs" / "base" / "last" / "state.pt").is_file()  # --keep-checkpoints
    printed = capfd.readouterr()
    for text in (*lines, printed.out, printed.err, (tmp_path / "exp" / "results.json").read_text()):
        assert PASSWORD not in text


BAD = {
    "seeds zero": (["--budgets", "2", "--seeds", "0"], "seeds must be a whole number >= 1"),
    "seeds negative": (["--budgets", "2", "--seeds", "-2"], "seeds must be a whole number >= 1"),
    "versus unknown": (["--versus", "resnet_nonexistent"], "'resnet_nonexistent' is not a timm model"),
    "versus with strategies": (["--versus", "resnet34", "--strategies", "compound"], "versus sets the budget"),
    "storage not a url": (["--budgets", "2", "--storage", "ledger.db"], "storage must be a database URL"),
    "storage unreachable": (
        ["--budgets", "2", "--storage", "postgresql://someone:pw@127.0.0.1:9/db"],
        "cannot reach storage postgresql://someone:***@127.0.0.1:9/db",
    ),
}


@pytest.mark.parametrize("arguments, message", BAD.values(), ids=BAD.keys())
def test_bad_input_is_one_error_line_and_writes_nothing(tmp_path, arguments, message):
    code, output = cli("experiment", BASE, *TINY, *arguments, "--out", tmp_path / "exp")
    assert code == 1 and "Traceback" not in output and message in flat(output), output
    assert not (tmp_path / "exp").exists() and "pw@" not in output


def test_a_storage_that_is_not_a_database_and_a_report_without_experiment(tmp_path):
    (tmp_path / "notes.db").write_text("not a database, just notes\n" * 100)
    code, output = cli(
        "experiment",
        BASE,
        *TINY,
        "--budgets",
        "2",
        "--storage",
        f"sqlite:///{tmp_path / 'notes.db'}",
        "--out",
        tmp_path / "exp",
    )
    assert code == 1 and "file is not a database" in flat(output) and not (tmp_path / "exp").exists(), output
    code, output = cli("experiment", "report", "--out", tmp_path)
    assert code == 1 and f"{tmp_path} holds no experiment (no experiment.json)" in flat(output), output


def test_a_spawned_worker_s_error_reaches_the_parent_before_it_exits():
    """A spawned worker ends with os._exit (no interpreter teardown): its error line must be in the pipe first,
    and its exit code 1, the storage's password not in the line."""
    from timm_compound.experiment import runner
    from timm_compound.experiment import workers as pool

    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    url = f"postgresql://me:{PASSWORD}@127.0.0.1:1/nowhere"  # port 1: nothing listens
    setup = pool.Setup(url, [], runner.Recipe("builtin:digits", 1, {}, 10), 0, poll=0.1)
    process = context.Process(target=pool._worker_main, args=(setup, 2, messages))
    process.start()
    process.join(timeout=120)
    kind, text = messages.get(timeout=10)
    assert process.exitcode == 1
    assert kind == "error" and text.startswith("experiment-worker-2: ") and "127.0.0.1:1" in text
    assert PASSWORD not in text


def test_a_ledger_whose_runs_are_in_another_order_is_refused(tmp_path):
    """Same settings, runs recorded in another order (an older version ordered them by model, not by cost):
    a worker would train one model under another's row, so joining is refused and nothing is written."""
    from types import SimpleNamespace

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    settings = {"base": BASE, "seeds": [0]}
    names = ["base", "2x-depth", "2x-width"]
    jobs = [SimpleNamespace(index=index, name=name, seed=0) for index, name in enumerate(names, 1)]
    assert Ledger(open_engine(url), url).register(settings, jobs) is True
    assert Ledger(open_engine(url), url).register(settings, jobs) is False  # the same order joins
    before = _ledger(url)
    reordered = [SimpleNamespace(index=index, name=name, seed=0) for index, name in enumerate(reversed(names), 1)]
    with pytest.raises(tc.CompoundError) as refused:
        Ledger(open_engine(url), url).register(settings, reordered)
    message = str(refused.value)
    assert "holds this experiment's runs in another order (run 1 is base seed 0 there, 2x-width seed 0 here" in message
    assert "nothing was changed" in message
    assert _ledger(url) == before
