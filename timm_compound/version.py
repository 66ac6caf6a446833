"""The installed version of timm-compound, recorded in every published config."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("timm-compound")
except PackageNotFoundError:  # a source checkout that was never installed
    __version__ = "0.0.0+unknown"
