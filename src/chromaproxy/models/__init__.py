"""Backbone registry: every entry follows the layer contract in ``models/base.py``.

An entry is a callable ``(in_channels, width, blocks) -> Backbone``; backbones without a block count
ignore ``blocks``. Adding a backbone is one file plus one line here, and ``tests/test_backbone_contract.py``
checks it without changes.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

from chromaproxy.errors import UserError
from chromaproxy.models.base import Backbone, TapInfo
from chromaproxy.models.nin import NIN

BACKBONES: dict[str, Callable[..., Backbone]] = {
    "nin": lambda in_channels, width, blocks: NIN(in_channels, blocks=blocks, width=width),
}


def build_backbone(name: str, *, in_channels: int, width: float = 1.0, blocks: int = 4) -> Backbone:
    """The backbone ``model.name`` for ``in_channels`` input channels (see ``models.inputs``)."""
    if name not in BACKBONES:
        close = difflib.get_close_matches(name, BACKBONES, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise UserError(f"unknown backbone model.name={name}: {hint}available: {', '.join(BACKBONES)}")
    if width <= 0:
        raise UserError(f"model.width={width} must be positive (1 = the paper's channels, 0.5 = half)")
    return BACKBONES[name](in_channels=in_channels, width=width, blocks=blocks)


__all__ = ["BACKBONES", "Backbone", "TapInfo", "build_backbone"]
