"""Where a study lives: an SQLite file in the output folder by default, or any SQLAlchemy URL.

`--storage postgresql://user@host/db` lets workers on several machines join one study. Trials
send heartbeats; a trial whose worker stopped beating (killed, machine lost) is failed by the next
worker that looks and retried once more through Optuna's RetryFailedTrialCallback.

A storage URL may hold a password: it is never printed or logged (see `timm_compound.storage.urls`,
which the experiment's ledger shares).
"""

from __future__ import annotations

import inspect
import time
import warnings
from pathlib import Path

from timm_compound.errors import CompoundError
from timm_compound.storage.database import check_url, errors
from timm_compound.storage.urls import (  # noqa: F401 - re-exported: the search's storage helpers by their old names
    CONNECT_TIMEOUT,
    SQLITE_LOCK_TIMEOUT,
    engine_kwargs,
    password_of,
    redact,
    scrub,
    with_driver,
)

DEFAULT_FILE = "study.db"
DEFAULT_HEARTBEAT = 60  # seconds between heartbeats; a trial is stale after twice that
MAX_RETRY = 2  # a candidate whose worker died is tried at most 1 + MAX_RETRY times
SCHEMA_ATTEMPTS = 5  # tries to open a storage whose tables another worker is creating at that moment


def default_url(out: str | Path) -> str:
    """sqlite:////abs/out/study.db: embedded, nothing to start."""
    return f"sqlite:///{(Path(out).resolve() / DEFAULT_FILE).as_posix()}"


def open_storage(url: str, *, heartbeat: int = DEFAULT_HEARTBEAT, max_retry: int = MAX_RETRY):
    """An Optuna RDBStorage with heartbeats and retries; an unreachable server, a missing driver or a
    URL that is not one is a CompoundError naming the URL without its password."""
    import optuna
    import sqlalchemy.exc

    check_url(url)
    if isinstance(heartbeat, bool) or not isinstance(heartbeat, int) or heartbeat < 1:
        raise CompoundError(f"heartbeat must be a whole number of seconds >= 1, got {heartbeat!r}")
    # optuna >= 4.9 names it RetryHeartbeatStaleTrialCallback, passed as heartbeat_stale_trial_callback;
    # before, RetryFailedTrialCallback as failed_trial_callback: the same callback
    parameters = inspect.signature(optuna.storages.RDBStorage).parameters
    renamed = "heartbeat_stale_trial_callback" in parameters
    retry_class = (
        optuna.storages.RetryHeartbeatStaleTrialCallback if renamed else optuna.storages.RetryFailedTrialCallback
    )
    callback = "heartbeat_stale_trial_callback" if renamed else "failed_trial_callback"

    def connect():
        with warnings.catch_warnings():  # heartbeats and retries are "experimental" since optuna 2.9
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                with_driver(url),
                engine_kwargs=engine_kwargs(url),
                heartbeat_interval=heartbeat,
                grace_period=2 * heartbeat,
                **{callback: retry_class(max_retry=max_retry)},
            )

    with errors(url):
        for attempt in range(SCHEMA_ATTEMPTS):
            try:
                return connect()
            except sqlalchemy.exc.SQLAlchemyError as error:
                # workers started together on a new database race to create its tables: the loser's
                # CREATE TABLE fails with "already exists", and the tables it wanted are there now
                if "already exists" not in str(error) or attempt == SCHEMA_ATTEMPTS - 1:
                    raise
                time.sleep(0.2 * (attempt + 1))
