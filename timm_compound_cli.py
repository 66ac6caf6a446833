"""Console entry for `timm-compound`.

`main` marks the process as a CLI run (``CLI_RUN``) before importing the package, so the root
package skips its heavy imports and the registration of variants with timm: `--help`,
`rules validate` and `rules schema` start without torch. Commands that need registered names
or TIMM_COMPOUND_RULES_PATH call ``timm_compound.registry.startup.ensure_registered`` (the
app's callback does it for them), and a bad user rule file is one `error:` line there.

Whatever a command does not catch itself is one `error:` line too, exit status 1: the traceback is
for `--debug` (anywhere on the command line) or TIMM_COMPOUND_DEBUG=1.
"""

import os
import sys

CLI_RUN = False


def main() -> None:
    global CLI_RUN
    CLI_RUN = True
    sys.modules.setdefault("timm_compound_cli", sys.modules[__name__])  # also when run as a script
    try:
        from timm_compound.cli import app
    except ValueError as error:  # timm_compound.errors.CompoundError, which cannot be imported here
        if type(error).__module__ != "timm_compound.errors":
            raise
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    debug = "--debug" in sys.argv[1:] or os.environ.get("TIMM_COMPOUND_DEBUG", "") not in ("", "0")
    sys.argv[1:] = [arg for arg in sys.argv[1:] if arg != "--debug"]
    try:
        app(prog_name="timm-compound")
    except BrokenPipeError:  # `timm-compound list | head`
        sys.stderr.close()
        raise SystemExit(0) from None
    except Exception as error:
        if debug:
            raise
        from timm_compound.errors import without_unsafe_advice

        message = " ".join(without_unsafe_advice(str(error)).split())
        print(f"error: {type(error).__name__}: {message} (run again with --debug for the traceback)", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
