"""Polyak averaging: an exponential moving average of a network's weights, the weights PIC (after
PixelCNN++) evaluates and samples with (``train.ema``, the decay per step; 0 = off).

The average starts from the initial weights, so with the plain decay a short run's average would still be
mostly its random init (0.9995^1000 ≈ 0.6); the decay therefore ramps up as min(decay, (1 + t)/(10 + t)),
TensorFlow's ``ExponentialMovingAverage(num_updates)`` rule. Integer buffers (counters) are copied.
A checkpoint keeps the average as ``ema.<key>`` beside the training weights ``model.<key>``, which exact
resume needs; inference (``network.inference_weights``) prefers the average when there is one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

PREFIX = "ema."


class PolyakAverage:
    def __init__(self, module: nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in module.state_dict().items()}

    def rate(self, step: int) -> float:
        """The decay used at optimizer step ``step`` (0-based)."""
        return min(self.decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, module: nn.Module, step: int) -> None:
        decay = self.rate(step)
        for key, value in module.state_dict().items():
            shadow = self.shadow[key]
            if shadow.is_floating_point():
                shadow.lerp_(value.detach(), 1 - decay)
            else:
                shadow.copy_(value)

    def tensors(self) -> dict[str, torch.Tensor]:
        return {PREFIX + key: value for key, value in self.shadow.items()}

    def load(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore from a checkpoint's ``ema.*`` tensors (prefix removed); none keeps the current start."""
        for key, value in tensors.items():
            self.shadow[key].copy_(value)

    @contextmanager
    def swapped_in(self, module: nn.Module) -> Iterator[None]:
        """The average in ``module`` for the duration (evaluation), the training weights back afterwards."""
        training = {k: v.detach().clone() for k, v in module.state_dict().items()}
        module.load_state_dict(self.shadow)
        try:
            yield
        finally:
            module.load_state_dict(training)
