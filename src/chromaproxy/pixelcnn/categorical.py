"""A per-pixel softmax over the levels of one channel: the Grayscale PixelCNN's model of the 4-bit gray
image X̂ (16 levels; Kolesnikov & Lampert 2017, §4.3), where a mixture of logistics would waste its
capacity on bins this coarse.

It has ``LogisticMixture``'s interface (``channels``, ``params``, ``quantize``/``index``/``value``,
``log_prob``, ``noise_size``, ``draw``), so ``ConditionalPixelCNN`` and both samplers take either. Values
live on ``levels`` equally spaced points of [-1, 1], as for the mixture.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from chromaproxy.pixelcnn.levels import Levels


class Categorical(Levels):
    """One channel, ``levels`` logits per pixel."""

    channels = 1

    @property
    def params(self) -> int:
        return self.levels

    def log_prob(self, params: torch.Tensor, x: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        """log p(x) per pixel: params (N, levels), x (N, 1) on the levels → (N,). ``extra`` is unused (no
        side channels)."""
        return F.log_softmax(params, dim=1).gather(1, self.index(x)).squeeze(1)

    def noise_size(self) -> int:
        """One uniform per level: a Gumbel-max draw."""
        return self.levels

    def draw(
        self, params: torch.Tensor, extra: torch.Tensor | None, noise: torch.Tensor, how: str = "sample",
        temperature: float = 1.0, variance_reduction: float = 0.0,
    ) -> torch.Tensor:
        """(N, 1) on the levels. ``sample``: Gumbel-max of logits / T; ``mode``: the most probable level.
        Each level is its own component, so ``component-mode`` (MAP sampling) is the same draw as
        ``sample``, and there are no scales for ``variance_reduction`` to lower."""
        if how == "mode":
            chosen = params.argmax(dim=1)
        else:
            chosen = (params / temperature - torch.log(-torch.log(noise[:, : self.levels]))).argmax(dim=1)
        return self.value(chosen, params.dtype)[:, None]
