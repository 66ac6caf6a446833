"""The experiment's ledger in a database, so that any number of worker processes share its runs.

Two tables, created on first use in any SQLAlchemy database (an SQLite file or PostgreSQL, as for
`search --storage`; the search's Optuna tables may share the database):

    timm_compound_experiment        one row: the experiment's settings (a storage holds one experiment)
    timm_compound_experiment_runs   one row per (model, seed): state (waiting, running, done, failed),
                                    the worker holding it, its last heartbeat, claims, epochs trained

A worker claims a run with one conditional UPDATE (waiting, or running with a heartbeat older than
the grace period) whose row count says whether it won, so two workers never hold one run; the
database's own locking decides, on SQLite and PostgreSQL alike. The holder beats every `heartbeat`
seconds from a thread; a killed worker stops beating, and after twice that another worker takes the
run over and resumes it from its last saved epoch (the run folder is shared). Heartbeats are
wall-clock seconds of the workers' machines: keep their clocks in step (NTP) when they are many.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from timm_compound.errors import CompoundError
from timm_compound.experiment.inputs import differences
from timm_compound.storage.database import errors
from timm_compound.storage.urls import redact

EXPERIMENTS, RUNS = "timm_compound_experiment", "timm_compound_experiment_runs"
MAX_CLAIMS = 3  # a run whose worker died this many times is given up (failed), not retried forever
SCHEMA_ATTEMPTS = 5  # tries to create the tables while another worker creates them


def _tables():
    import sqlalchemy as sa

    metadata = sa.MetaData()
    experiments = sa.Table(
        EXPERIMENTS,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("settings", sa.Text, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
    )
    runs = sa.Table(
        RUNS,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),  # the job's place in order
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("seed", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("worker", sa.String(200)),
        sa.Column("heartbeat", sa.Float),
        sa.Column("claims", sa.Integer, nullable=False),
        sa.Column("epochs_trained", sa.Integer, nullable=False),
        sa.Column("message", sa.Text),
        sa.UniqueConstraint("name", "seed", name="timm_compound_experiment_run"),
    )
    return metadata, experiments, runs


METADATA, EXPERIMENT_TABLE, RUN_TABLE = _tables()


@dataclass(frozen=True)
class Claim:
    """A run this worker holds: its id (the job index) and whether it took it over from a silent worker."""

    id: int
    took_over: bool
    claims: int


@dataclass(frozen=True)
class Counts:
    waiting: int
    running: int
    done: int
    failed: int
    trained_twice: int  # runs that trained more epochs than the experiment has: some epoch ran twice

    @property
    def remaining(self) -> int:
        return self.waiting + self.running


class Ledger:
    """The ledger of one experiment in the database behind `engine`."""

    def __init__(self, engine, url: str):
        self.engine, self.url, self.shown = engine, url, redact(url)

    # ------------------------------------------------------------------ set up

    def register(self, settings: dict[str, Any], jobs: list[Any]) -> bool:
        """Record the experiment and its runs, or check that the storage holds this very experiment.
        True when this call created it. A different experiment is refused before anything is written."""
        import sqlalchemy as sa

        with errors(self.url):
            if self._recorded() is None:
                self._create_tables()
                try:
                    with self.engine.begin() as connection:
                        connection.execute(
                            sa.insert(EXPERIMENT_TABLE).values(
                                id=1, settings=json.dumps(settings, sort_keys=True), created=time.time()
                            )
                        )
                        connection.execute(
                            sa.insert(RUN_TABLE),
                            [
                                {
                                    "id": job.index,
                                    "name": job.name,
                                    "seed": job.seed,
                                    "state": "waiting",
                                    "claims": 0,
                                    "epochs_trained": 0,
                                }
                                for job in jobs
                            ],
                        )
                    return True
                except sa.exc.IntegrityError:
                    pass  # another worker recorded it a moment ago: compare below
        self.check(settings)
        self._check_runs(jobs)
        return False

    def check(self, settings: dict[str, Any]) -> None:
        """Refuse a storage that holds a different experiment, naming every difference (nothing is written)."""
        with errors(self.url):
            recorded = self._recorded()
        if recorded is None:
            return
        found = differences(recorded, settings, where="storage")
        if found:
            raise CompoundError(
                f"storage {self.shown} holds a different experiment ({'; '.join(found)}): refused, "
                "nothing was changed; use another database, or repeat its settings to join it"
            )

    def _check_runs(self, jobs: list[Any]) -> None:
        """The recorded runs are these jobs in this order (a ledger written by a version that ordered them
        otherwise would hand a worker one model's row for another's training)."""
        recorded = [(row["id"], row["name"], row["seed"]) for row in self.rows()]
        expected = [(job.index, job.name, job.seed) for job in jobs]
        if recorded != expected:
            first = next((pair for pair in zip(recorded, expected) if pair[0] != pair[1]), None)
            where = (
                f"run {first[0][0]} is {first[0][1]} seed {first[0][2]} there, {first[1][1]} seed {first[1][2]} here"
                if first
                else f"{len(recorded)} runs there, {len(expected)} here"
            )
            raise CompoundError(
                f"storage {self.shown} holds this experiment's runs in another order ({where}; recorded by "
                "another version of timm-compound?): refused, nothing was changed; finish it with that version, "
                "or start this one with another --storage and --out"
            )

    def _recorded(self) -> dict[str, Any] | None:
        import sqlalchemy as sa

        if not sa.inspect(self.engine).has_table(EXPERIMENTS):
            return None
        with self.engine.connect() as connection:
            text = connection.execute(sa.select(EXPERIMENT_TABLE.c.settings).where(EXPERIMENT_TABLE.c.id == 1)).scalar()
        if text is None:
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise CompoundError(f"storage {self.shown}: the recorded experiment is not readable JSON") from None

    def _create_tables(self) -> None:
        import sqlalchemy as sa

        for attempt in range(SCHEMA_ATTEMPTS):
            try:
                METADATA.create_all(self.engine, checkfirst=True)
                return
            except sa.exc.SQLAlchemyError as error:  # workers starting together race to create the tables
                if "already exists" not in str(error) or attempt == SCHEMA_ATTEMPTS - 1:
                    raise
                time.sleep(0.2 * (attempt + 1))

    # ------------------------------------------------------------------ work

    def claim(self, worker: str, grace: float) -> Claim | None:
        """The first run no one holds (waiting, or its worker silent for `grace` seconds), now this worker's."""
        import sqlalchemy as sa

        runs = RUN_TABLE
        with errors(self.url):
            now = time.time()
            free = sa.or_(runs.c.state == "waiting", sa.and_(runs.c.state == "running", runs.c.heartbeat < now - grace))
            with self.engine.connect() as connection:
                found = connection.execute(
                    sa.select(runs.c.id, runs.c.state, runs.c.claims).where(free).order_by(runs.c.id)
                ).all()
            for run_id, state, claims in found:
                with self.engine.begin() as connection:
                    if claims >= MAX_CLAIMS:  # its workers died MAX_CLAIMS times: given up, not retried forever
                        connection.execute(
                            sa.update(runs)
                            .where(runs.c.id == run_id, free)
                            .values(
                                state="failed",
                                worker=None,
                                message=f"given up: {claims} workers stopped while training it (killed, lost or failed)",
                            )
                        )
                        continue
                    taken = connection.execute(
                        sa.update(runs)
                        .where(runs.c.id == run_id, free)
                        .values(state="running", worker=worker, heartbeat=now, claims=runs.c.claims + 1)
                    )
                if taken.rowcount == 1:
                    return Claim(run_id, state == "running", claims + 1)
        return None

    def _update(self, run_id: int, worker: str, **values: Any) -> bool:
        """Change a run this worker holds; False when it no longer holds it (taken over)."""
        import sqlalchemy as sa

        runs = RUN_TABLE
        with errors(self.url), self.engine.begin() as connection:
            result = connection.execute(
                sa.update(runs)
                .where(runs.c.id == run_id, runs.c.worker == worker, runs.c.state == "running")
                .values(**values)
            )
        return result.rowcount == 1

    def beat(self, run_id: int, worker: str) -> bool:
        return self._update(run_id, worker, heartbeat=time.time())

    def epoch(self, run_id: int, worker: str) -> bool:
        """One more epoch trained by this worker (and a heartbeat)."""
        return self._update(run_id, worker, heartbeat=time.time(), epochs_trained=RUN_TABLE.c.epochs_trained + 1)

    def finish(self, run_id: int, worker: str, state: str, message: str | None = None) -> bool:
        return self._update(run_id, worker, state=state, message=message, heartbeat=time.time())

    def release(self, run_id: int, worker: str, *, forgive: bool = True) -> bool:
        """Give a run back: waiting again. `forgive` (this worker was interrupted): the claim is not counted;
        otherwise (training raised) it counts towards MAX_CLAIMS, so a run that always fails is given up."""
        claims = RUN_TABLE.c.claims - 1 if forgive else RUN_TABLE.c.claims
        return self._update(run_id, worker, state="waiting", worker=None, claims=claims)

    # ------------------------------------------------------------------ read

    def counts(self, epochs: int) -> Counts:
        import sqlalchemy as sa

        runs = RUN_TABLE
        with errors(self.url), self.engine.connect() as connection:
            states = dict(connection.execute(sa.select(runs.c.state, sa.func.count()).group_by(runs.c.state)).all())
            twice = connection.execute(sa.select(sa.func.count()).where(runs.c.epochs_trained > epochs)).scalar()
        return Counts(
            states.get("waiting", 0),
            states.get("running", 0),
            states.get("done", 0),
            states.get("failed", 0),
            int(twice or 0),
        )

    def rows(self) -> list[dict[str, Any]]:
        """Every run's ledger row (for tests and `experiment report`)."""
        import sqlalchemy as sa

        with errors(self.url), self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(sa.select(RUN_TABLE).order_by(RUN_TABLE.c.id))]
