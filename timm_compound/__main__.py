"""`python -m timm_compound`: the `timm-compound` console script (one-line errors, `--debug`)."""

from timm_compound_cli import main

main()
