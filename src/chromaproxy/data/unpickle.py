"""A pickle reader that can build numpy arrays and nothing else.

The standard datasets (CIFAR-10/100) ship as pickles, and ``pickle.load`` on a downloaded or user-supplied
file runs whatever callable the file names. ``safe_load`` resolves only the four globals numpy needs to
rebuild an array; the containers (dict, list, tuple, bytes, int) are built by pickle opcodes and need no
global at all. The official files (Python 2, protocol 2) use ``numpy.core.multiarray._reconstruct``,
``numpy.ndarray`` and ``numpy.dtype``; their byte strings are ``BINSTRING`` opcodes, so ``_codecs.encode``
(which Python 3 protocol-2 pickles of ``bytes`` would need) is not allowed.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import IO, Any

import numpy as np

from chromaproxy.errors import UserError

DEFAULT_HINT = "re-download it or take it from a source you trust"
_BROKEN = (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError)


def _reconstruct() -> Any:
    """numpy's array-rebuild helper, from ``numpy._core`` (numpy 2) or ``numpy.core`` (numpy 1)."""
    try:
        from numpy._core.multiarray import _reconstruct as found
    except ImportError:
        from numpy.core.multiarray import _reconstruct as found
    return found


ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct(),
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct(),
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Refuses every global outside ``ALLOWED_GLOBALS`` before anything can call it."""

    def __init__(self, file: IO[bytes], name: str, hint: str, encoding: str) -> None:
        super().__init__(file, encoding=encoding)
        self.name, self.hint = name, hint

    def find_class(self, module: str, name: str) -> Any:
        allowed = ALLOWED_GLOBALS.get((module, name))
        if allowed is None:
            raise UserError(
                f"refusing to unpickle {self.name}: it asks for '{module}.{name}', and a dataset file may only "
                f"hold numpy arrays and plain containers; {self.hint}"
            )
        return allowed


def safe_load(source: str | Path | IO[bytes], *, hint: str = DEFAULT_HINT, encoding: str = "bytes") -> Any:
    """Unpickle ``source`` (a path or a binary file) allowing only numpy arrays and built-in containers.

    A refused global, a truncated file or anything that is not a pickle raises ``UserError`` naming the file
    and ending with ``hint`` (what the user should do about it).
    """
    if isinstance(source, (str, Path)):
        with open(source, "rb") as handle:
            return _load(handle, str(source), hint, encoding)
    return _load(source, str(getattr(source, "name", "<stream>")), hint, encoding)


def _load(handle: IO[bytes], name: str, hint: str, encoding: str) -> Any:
    try:
        return _ArrayOnlyUnpickler(handle, name, hint, encoding).load()
    except _BROKEN as err:
        raise UserError(f"{name} is truncated or not a valid pickle ({type(err).__name__}: {err}); {hint}") from err
