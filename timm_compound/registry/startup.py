"""Registering the shipped variants and the user's rule paths with timm, once per process.

``import timm_compound`` calls `ensure_registered` as its last step. The `timm-compound`
console script (``timm_compound_cli``) marks its process as a CLI run first, so the root
package skips its heavy imports and registration: ``--help``, ``rules validate`` and
``rules schema`` then never import torch, and the commands that need registered names or
user rules call `ensure_registered` themselves (``timm_compound.cli.app``).
"""

from __future__ import annotations

import threading

from timm_compound.registry.register import register_shipped
from timm_compound.registry.user_rules import load_rules_from_env

_lock = threading.Lock()
_done = False


def ensure_registered() -> None:
    """Register the shipped registry files, then TIMM_COMPOUND_RULES_PATH's files; a no-op after the
    first success. An error (a bad user rule file) leaves it to be retried, as the import would."""
    global _done
    with _lock:
        if not _done:
            register_shipped()
            load_rules_from_env()
            _done = True
