"""Storage URLs: passwords kept out of every message, and the PostgreSQL driver that is installed.

A storage URL may hold a password: it is never printed or logged. Every message shows `redact(url)`
and passes driver errors through `scrub`. Better still, keep the password out of the URL (PGPASSWORD
or ~/.pgpass for PostgreSQL) and out of the command line (TIMM_COMPOUND_STORAGE).
"""

from __future__ import annotations

import importlib.util
import re
from typing import Any
from urllib.parse import quote, quote_plus, unquote

SQLITE_LOCK_TIMEOUT = 60  # seconds an SQLite writer waits for another process's lock
CONNECT_TIMEOUT = 10  # seconds to reach a database server before giving up

_PASSWORD = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)(?P<password>[^@\s]*)(?P<tail>@.*)$", re.S)


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
            return dialect + url[len("postgresql") :]
    return url


def engine_kwargs(url: str) -> dict[str, Any]:
    """SQLite waits for another process's lock; a server is given a connect timeout and pings."""
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": SQLITE_LOCK_TIMEOUT}}
    if url.startswith("postgresql"):
        return {"connect_args": {"connect_timeout": CONNECT_TIMEOUT}, "pool_pre_ping": True}
    return {}
