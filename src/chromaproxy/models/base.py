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
    stride: int  # product of the conv / pool strides: map side = input side / stride, less any trimmed border


def scaled(channels: int, width: float) -> int:
    """A channel count times the width multiplier, rounded, at least 1."""
    return max(1, round(channels * width))


def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Output side of a conv or pool over ``size`` pixels (the formula of ``nn.Conv2d``'s docs)."""
    return (size + 2 * padding - kernel) // stride + 1


def kaiming_init(model: nn.Module, negative_slope: float = 0.0) -> None:
    """He et al. 2015 init for a conv net whose convs feed (leaky) ReLUs: conv weights ~ N(0, 2 / ((1 + a²)
    · k·k·out)) (fan-out, as the ResNet and VGG reference code), BN scale 1 and shift 0. The convs have no
    bias: the BN after each one subtracts it again."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, a=negative_slope, mode="fan_out", nonlinearity="leaky_relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


class Backbone(nn.Module):
    """A chain of named stages; tap ``name`` is the output of stage ``name``.

    Subclasses fill ``self.stages`` (an ``nn.ModuleDict`` in depth order, one entry per tap) and
    ``self.feature_info`` (the matching ``TapInfo`` list), and set ``input_size`` when built for 128 or 224 px. A
    backbone whose taps are not a plain chain overrides ``forward_features`` and keeps the same contract;
    one whose layers trim the map's border overrides ``feature_size``.
    """

    feature_info: list[TapInfo]
    stages: nn.ModuleDict
    input_size: int = 32  # the image side the network is designed for: 32 (CIFAR scale), 128 (PIC) or 224 (ImageNet scale)

    @property
    def tap_names(self) -> list[str]:
        return [tap.name for tap in self.feature_info]

    def feature_size(self, tap: str, input_size: int) -> int:
        """Side of tap ``tap``'s map for a square input of side ``input_size``. Here ``input_size // stride``,
        exact for 'same'-padded layers when the stride divides the side; a backbone whose layers trim the
        border (a valid conv, AlexNet's 11x11 stride-4 conv1) overrides this with its conv arithmetic."""
        return input_size // self.tap_info(tap).stride

    def tap_info(self, name: str) -> TapInfo:
        """The ``TapInfo`` of tap ``name``."""
        if name not in self.tap_names:
            raise self._unknown_tap(name)
        return self.feature_info[self.tap_names.index(name)]

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
                raise self._unknown_tap(name)
        return [name for name in self.tap_names if name in names]

    def _unknown_tap(self, name: str) -> UserError:
        return UserError(f"unknown tap '{name}'{_did_you_mean(name, self.tap_names)}; "
                         f"this backbone has: {', '.join(self.tap_names)} (or all)")

    def forward_features(self, x: torch.Tensor, taps: Sequence[str] | str) -> dict[str, torch.Tensor]:
        """{tap: feature map (B, channels, h, w)} in depth order, h = ``feature_size(tap, H)``; stages past
        the deepest requested tap do not run."""
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
