"""harlab: human activity recognition from raw wearable and smartphone sensor signals."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("harlab")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
