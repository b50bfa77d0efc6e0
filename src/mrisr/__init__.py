"""mrisr: MRI super-resolution with geometry-preserving I/O, physical degradations and honest baselines."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mrisr")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
