"""The backbone layer contract (after timm's ``feature_info`` / ``forward_intermediates`` and VISSL's
``out_feat_keys``).

Every backbone declares its taps (name, channels, stride) in depth order and computes only up to the
deepest tap asked for, without forward hooks, so evaluation can probe any layer and a task pays only for
the layers it reads. Classification heads are not part of a backbone: tasks and probes own them.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from chromaproxy.errors import UserError


@dataclass(frozen=True)
class TapInfo:
    name: str  # stable, documented name (NIN: block1 … blockN)
    channels: int
    stride: int  # input size / feature map size


class Backbone(nn.Module):
    """A chain of named stages; tap ``name`` is the output of stage ``name``.

    Subclasses fill ``self.stages`` (an ``nn.ModuleDict`` in depth order, one entry per tap) and
    ``self.feature_info`` (the matching ``TapInfo`` list). A backbone whose taps are not a plain chain
    overrides ``forward_features`` and keeps the same contract.
    """

    feature_info: list[TapInfo]
    stages: nn.ModuleDict

    @property
    def tap_names(self) -> list[str]:
        return [tap.name for tap in self.feature_info]

    def resolve_taps(self, taps: Sequence[str] | str) -> list[str]:
        """Validated tap names in depth order, without repeats. ``"all"`` means every tap; a string
        is read as comma-separated names (``"block1,block3"``, as typed after ``--taps``)."""
        names = [t.strip() for t in taps.split(",")] if isinstance(taps, str) else list(taps)
        if names == ["all"]:
            return self.tap_names
        if not names:
            raise UserError(f"no taps requested; name at least one of: {', '.join(self.tap_names)} (or all)")
        for name in names:
            if name not in self.tap_names:
                raise UserError(f"unknown tap '{name}'{_did_you_mean(name, self.tap_names)}; "
                                f"this backbone has: {', '.join(self.tap_names)} (or all)")
        return [name for name in self.tap_names if name in names]

    def forward_features(self, x: torch.Tensor, taps: Sequence[str] | str) -> dict[str, torch.Tensor]:
        """{tap: feature map (B, channels, H / stride, W / stride)} in depth order; stages past the
        deepest requested tap do not run."""
        wanted = self.resolve_taps(taps)
        features: dict[str, torch.Tensor] = {}
        for name, stage in self.stages.items():
            x = stage(x)
            if name in wanted:
                features[name] = x
                if len(features) == len(wanted):
                    break
        return features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The deepest tap's feature map."""
        deepest = self.feature_info[-1].name
        return self.forward_features(x, [deepest])[deepest]


def _did_you_mean(name: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""
