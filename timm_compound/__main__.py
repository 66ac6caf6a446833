from timm_compound.cli import main

main()
