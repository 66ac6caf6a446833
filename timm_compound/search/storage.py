"""Where a study lives: an SQLite file in the output folder by default, or any SQLAlchemy URL.

`--storage postgresql://user@host/db` lets workers on several machines join one study. Trials
send heartbeats; a trial whose worker stopped beating (killed, machine lost) is failed by the next
worker that looks and retried once more through Optuna's RetryFailedTrialCallback.

A storage URL may hold a password: it is never printed or logged. Every message shows `redact(url)`
and passes driver errors through `scrub`. Better still, keep the password out of the URL (PGPASSWORD
or ~/.pgpass for PostgreSQL) and out of the command line (TIMM_COMPOUND_STORAGE).
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import time
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, unquote

from timm_compound.errors import CompoundError

DEFAULT_FILE = "study.db"
DEFAULT_HEARTBEAT = 60     # seconds between heartbeats; a trial is stale after twice that
MAX_RETRY = 2              # a candidate whose worker died is tried at most 1 + MAX_RETRY times
SQLITE_LOCK_TIMEOUT = 60   # seconds an SQLite writer waits for another process's lock
CONNECT_TIMEOUT = 10       # seconds to reach a database server before giving up
SCHEMA_ATTEMPTS = 5        # tries to open a storage whose tables another worker is creating at that moment

_PASSWORD = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)(?P<password>[^@\s]*)(?P<tail>@.*)$", re.S)


def default_url(out: str | Path) -> str:
    """sqlite:////abs/out/study.db: embedded, nothing to start."""
    return f"sqlite:///{(Path(out).resolve() / DEFAULT_FILE).as_posix()}"


def password_of(url: str) -> str | None:
    match = _PASSWORD.match(url or "")
    return unquote(match["password"]) if match and match["password"] else None


def redact(url: str) -> str:
    """The URL with its password replaced by ***: the only form of a storage URL ever shown."""
    match = _PASSWORD.match(url or "")
    if not match or not match["password"]:
        return url
    return f"{match['head']}***{match['tail']}"


def scrub(text: str, url: str) -> str:
    """`text` (e.g. a driver's error) with the URL's password, in any spelling, replaced by ***."""
    text = text.replace(url, redact(url))
    password = password_of(url)
    if password:
        for form in {password, quote(password, safe=""), quote_plus(password), _PASSWORD.match(url)["password"]}:
            if form:
                text = text.replace(form, "***")
    return text


def with_driver(url: str) -> str:
    """`postgresql://` names no driver and SQLAlchemy's default changed (psycopg2 before 2.1, psycopg 3
    since): use whichever is installed, psycopg 3 first. Any other URL is used as given."""
    if not url.startswith("postgresql://"):
        return url
    for module, dialect in (("psycopg", "postgresql+psycopg"), ("psycopg2", "postgresql+psycopg2")):
        if importlib.util.find_spec(module) is not None:
            return dialect + url[len("postgresql"):]
    return url


def _engine_kwargs(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": SQLITE_LOCK_TIMEOUT}}
    if url.startswith("postgresql"):
        return {"connect_args": {"connect_timeout": CONNECT_TIMEOUT}, "pool_pre_ping": True}
    return {}


def open_storage(url: str, *, heartbeat: int = DEFAULT_HEARTBEAT, max_retry: int = MAX_RETRY):
    """An Optuna RDBStorage with heartbeats and retries; an unreachable server, a missing driver or a
    URL that is not one is a CompoundError naming the URL without its password."""
    import optuna
    import sqlalchemy.exc

    if not isinstance(url, str) or "://" not in url:
        raise CompoundError(f"storage must be a database URL such as sqlite:///study.db or "
                            f"postgresql://user@host/db, got {redact(str(url))!r}")
    if isinstance(heartbeat, bool) or not isinstance(heartbeat, int) or heartbeat < 1:
        raise CompoundError(f"heartbeat must be a whole number of seconds >= 1, got {heartbeat!r}")
    # optuna >= 4.9 names it RetryHeartbeatStaleTrialCallback, passed as heartbeat_stale_trial_callback;
    # before, RetryFailedTrialCallback as failed_trial_callback: the same callback
    parameters = inspect.signature(optuna.storages.RDBStorage).parameters
    renamed = "heartbeat_stale_trial_callback" in parameters
    retry_class = optuna.storages.RetryHeartbeatStaleTrialCallback if renamed else optuna.storages.RetryFailedTrialCallback
    callback = "heartbeat_stale_trial_callback" if renamed else "failed_trial_callback"
    shown = redact(url)

    def connect():
        with warnings.catch_warnings():   # heartbeats and retries are "experimental" since optuna 2.9
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(with_driver(url), engine_kwargs=_engine_kwargs(url), heartbeat_interval=heartbeat,
                                              grace_period=2 * heartbeat, **{callback: retry_class(max_retry=max_retry)})

    try:
        for attempt in range(SCHEMA_ATTEMPTS):
            try:
                return connect()
            except sqlalchemy.exc.SQLAlchemyError as error:
                # workers started together on a new database race to create its tables: the loser's
                # CREATE TABLE fails with "already exists", and the tables it wanted are there now
                if "already exists" not in str(error) or attempt == SCHEMA_ATTEMPTS - 1:
                    raise
                time.sleep(0.2 * (attempt + 1))
    except ImportError as error:   # the dialect's driver (psycopg, pymysql, ...) is not installed
        cause = error.__cause__ if isinstance(error.__cause__, ImportError) else error
        name = getattr(cause, "name", None)
        driver = f"its database driver {name!r} is" if name else "its database driver is"
        hint = " (pip install 'timm-compound[postgres]')" if url.startswith("postgresql") else ""
        raise CompoundError(f"storage {shown}: {driver} not installed{hint}") from None
    except sqlalchemy.exc.NoSuchModuleError:
        raise CompoundError(f"storage {shown}: SQLAlchemy knows no database kind {url.split('://')[0]!r}") from None
    except sqlalchemy.exc.ArgumentError as error:
        raise CompoundError(f"storage {shown} is not a valid database URL: {scrub(str(error), url)}") from None
    except sqlalchemy.exc.SQLAlchemyError as error:
        reason = scrub(str(getattr(error, "orig", None) or error), url).strip().splitlines()
        raise CompoundError(f"cannot reach storage {shown}: {' '.join(line.strip() for line in reason)[:400]}") from None
