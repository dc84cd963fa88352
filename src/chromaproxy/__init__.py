"""chromaproxy: self-supervised visual representations from proxy tasks, measured layer by layer."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("chromaproxy")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
