"""An SQLAlchemy engine for a storage URL, and one clear error for every way a URL can fail.

`errors(url)` is the one place that turns a missing driver, an unknown database kind, a malformed
URL, an unreachable server or a file that is not a database into a CompoundError naming the URL
without its password; the search's Optuna storage and the experiment's ledger both open through it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from timm_compound.errors import CompoundError
from timm_compound.storage.urls import engine_kwargs, redact, scrub, with_driver


def check_url(url: object) -> str:
    if not isinstance(url, str) or "://" not in url:
        raise CompoundError(
            f"storage must be a database URL such as sqlite:///study.db or "
            f"postgresql://user@host/db, got {redact(str(url))!r}"
        )
    return url


@contextlib.contextmanager
def errors(url: str) -> Iterator[None]:
    """Inside: SQLAlchemy's and the drivers' errors become one CompoundError naming the redacted URL."""
    import sqlalchemy.exc

    shown = redact(url)
    try:
        yield
    except ImportError as error:  # the dialect's driver (psycopg, pymysql, ...) is not installed
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
        raise CompoundError(
            f"cannot reach storage {shown}: {' '.join(line.strip() for line in reason)[:400]}"
        ) from None


def open_engine(url: str):
    """An SQLAlchemy engine for `url` whose schema could be read (so a bad URL fails here, clearly)."""
    import sqlalchemy

    check_url(url)
    with errors(url):
        engine = sqlalchemy.create_engine(with_driver(url), **engine_kwargs(url))
        sqlalchemy.inspect(engine).get_table_names()  # reads the schema: a file that is no database fails here
    return engine
