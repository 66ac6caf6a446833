"""The `timm-compound` command line: one module per command group, all attached to `app`.

- `variants`: list, show          - `demo`: demo
- `hub`: publish                  - `cost`: table, fit
- `measure`: measure (and the timing options table and fit share)
- `rules`: rules validate, schema, new, check
- `train`: train, eval            - `search`: search
- `inherit`: inherit
- `experiment`: experiment, cam
"""

from timm_compound.cli.app import app

# importing a command module attaches its commands to `app`, in the order --help lists them
from timm_compound.cli import variants, demo, hub, cost, measure, rules, train, inherit, search, experiment  # isort: skip  # noqa: F401


def main() -> None:
    """Console entry for `python -m timm_compound`."""
    app(prog_name="timm-compound")


__all__ = ["app", "main"]
