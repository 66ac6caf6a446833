"""Console entry for `timm-compound`.

A bad file on TIMM_COMPOUND_RULES_PATH is found while `timm_compound` itself is imported, before
the CLI exists; this shim shows it as one `error:` line, like every other CLI error, not a traceback.
"""

import sys


def main() -> None:
    try:
        from timm_compound.cli import app
    except ValueError as error:  # timm_compound.errors.CompoundError, which cannot be imported here
        if type(error).__module__ != "timm_compound.errors":
            raise
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    app(prog_name="timm-compound")


if __name__ == "__main__":
    main()
