"""scene2brain: model how human visual cortex responds to natural images."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("scene2brain")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"
