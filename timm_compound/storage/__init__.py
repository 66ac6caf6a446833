"""Databases that processes on many machines share: the coefficient search's Optuna studies and the
experiment's ledger of runs. SQLite files by default, any SQLAlchemy URL (PostgreSQL) to share.

- ``urls``: a URL's password never shown (`redact`, `scrub`), the installed PostgreSQL driver chosen
- ``database``: an SQLAlchemy engine opened with timeouts, and every way a URL can fail to be a
  database turned into one clear error naming the URL without its password
"""
