from timm_compound.cli import app

app(prog_name="timm-compound")
