"""Drawing images from a ``ConditionalPixelCNN``, pixel by pixel in raster order.

``sample_naive`` re-runs the whole network for each of the H·W pixels: H·W full passes. ``sample_cached``
(after Ramachandran et al. 2017, "Fast generation for convolutional autoregressive models") computes every
layer's output at each position exactly once, keeping each convolution's (zero-padded) input in a buffer
that fills as generation proceeds: the down stack, which sees only the rows above, is computed a row at a
time when a row starts; the down-right stack a pixel at a time, from the 2x2 window of its input that the
pixel reads. The work is then about one full pass, plus a few small operations per pixel and layer.

The cached sampler knows the single-resolution stacks only; ``sampler_for`` gives PixelCNN++'s U-Net
(``multiscale.py``, whose downsampling mixes each row into every later one) the naive loop, the way
PixelCNN++ is sampled. Both consume the same uniform numbers (``noise`` (B, K + C, H, W)) through
``LogisticMixture.draw``, so they give the same image for the same numbers; that equality is tested, and
``benchmarks/pic_sampling.py`` times the two.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from chromaproxy.pixelcnn.layers import ShiftedConv, concat_elu
from chromaproxy.pixelcnn.network import ConditionalPixelCNN, MixturePixelCNN


def draw_noise(batch: int, net: MixturePixelCNN, height: int, width: int, generator: torch.Generator, device) -> torch.Tensor:
    """Uniforms in (0, 1) for a whole image (B, K + C, H, W), kept away from 0 and 1 (logs stay finite)."""
    noise = torch.rand(batch, net.mixture.noise_size(), height, width, generator=generator, device=device)
    return noise.clamp(1e-6, 1 - 1e-6)


@torch.no_grad()
def sample_naive(net, cond, extra, noise, how: str = "sample", temperature: float = 1.0, variance_reduction: float = 0.0) -> torch.Tensor:
    """(B, C, H, W) by one full forward pass per pixel (the reference). cond/extra/noise: per-pixel maps."""
    batch, _, height, width = noise.shape
    x = noise.new_zeros(batch, net.mixture.channels, height, width)
    for i in range(height):
        for j in range(width):
            params = net(x, cond)[:, :, i, j]  # (B, P)
            x[:, :, i, j] = net.mixture.draw(params, _at(extra, i, j), noise[:, :, i, j], how, temperature, variance_reduction)
    return x


@torch.no_grad()
def sample_cached(net, cond, extra, noise, how: str = "sample", temperature: float = 1.0, variance_reduction: float = 0.0) -> torch.Tensor:
    """(B, C, H, W), the same as ``sample_naive`` for the same ``noise``, with every layer run once per pixel."""
    return _CachedRun(net, cond, noise).generate(extra, how, temperature, variance_reduction)


def sampler_for(net: MixturePixelCNN):
    """The fastest exact sampler for ``net``: the cached one where it applies, else the naive loop."""
    return sample_cached if isinstance(net, ConditionalPixelCNN) else sample_naive


def _at(extra: torch.Tensor | None, i: int, j: int) -> torch.Tensor | None:
    return None if extra is None else extra[:, :, i, j]


class _CachedRun:
    """One generation's buffers. Every buffer is padded 1 on top, left and right (the widest any conv
    needs); ``_view`` cuts the padding a particular conv expects out of it."""

    def __init__(self, net: ConditionalPixelCNN, cond: torch.Tensor | None, noise: torch.Tensor) -> None:
        if net.training:
            raise ValueError("cached sampling needs the network in eval mode (dropout off)")
        self.net, self.noise = net, noise
        batch, _, self.height, self.width = noise.shape
        channels, filters = net.mixture.channels, net.out.in_channels
        self.image = self._buffer(batch, channels + 1)  # the input with its ones channel
        self.image[:, channels, 1:, 1:-1] = 1
        self.biases = [(u.bias(cond), ul.bias(cond)) for u, ul in zip(net.u_blocks, net.ul_blocks)]
        self.buffers = [[self._buffer(batch, 2 * filters) for _ in range(4)] for _ in net.u_blocks]

    def _buffer(self, batch: int, channels: int) -> torch.Tensor:
        return self.noise.new_zeros(batch, channels, self.height + 1, self.width + 2)

    def _view(self, buffer: torch.Tensor, conv: ShiftedConv) -> torch.Tensor:
        left, right, top, _ = conv.pad
        return buffer[:, :, 1 - top :, 1 - left : 1 + self.width + right]

    def generate(self, extra, how: str, temperature: float, variance_reduction: float) -> torch.Tensor:
        channels = self.net.mixture.channels
        out = self.noise.new_zeros(self.noise.shape[0], channels, self.height, self.width)
        for i in range(self.height):
            u_rows, ul_up = self._rows(i)
            for j in range(self.width):
                params = self._pixel(i, j, u_rows, ul_up)  # (B, P)
                value = self.net.mixture.draw(
                    params, _at(extra, i, j), self.noise[:, :, i, j], how, temperature, variance_reduction)
                out[:, :, i, j] = value
                self.image[:, :channels, 1 + i, 1 + j] = value * self.net.input_gate()
        return out

    def _rows(self, i: int) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Row i of the down stack after every block ((B, F, 1, W) each) and of the down-right stack's
        part from the row above; both read only rows < i of the image."""
        net = self.net
        if i == 0:
            zeros = self.image.new_zeros(self.image.shape[0], net.out.in_channels, 1, self.width)
            u, ul_up = zeros, zeros
        else:
            u = net.u_init.window(self._view(self.image, net.u_init), i - 1)
            ul_up = net.ul_init_up.window(self._view(self.image, net.ul_init_up), i - 1)
        rows = []
        for block, (bias, _), (first, second, _, _) in zip(net.u_blocks, self.biases, self.buffers):
            first[:, :, 1 + i, 1 : 1 + self.width] = concat_elu(u)[:, :, 0]
            hidden = block.conv_in.window(self._view(first, block.conv_in), i)
            second[:, :, 1 + i, 1 : 1 + self.width] = block.dropout(concat_elu(hidden))[:, :, 0]
            gates = block.conv_out.window(self._view(second, block.conv_out), i)
            u = block.gate(u, gates, _row(bias, i))
            rows.append(u)
        return rows, ul_up

    def _pixel(self, i: int, j: int, u_rows: list[torch.Tensor], ul_up: torch.Tensor) -> torch.Tensor:
        """The mixture parameters at (i, j) from the down-right stack, one layer at a time."""
        net = self.net
        ul = ul_up[:, :, :, j : j + 1]  # (B, F, 1, 1)
        if j > 0:
            ul = ul + net.ul_init_left.window(self._view(self.image, net.ul_init_left), i, j - 1)
        for block, u, (_, bias), (_, _, first, second) in zip(net.ul_blocks, u_rows, self.biases, self.buffers):
            first[:, :, 1 + i, 1 + j] = concat_elu(ul)[:, :, 0, 0]
            hidden = block.conv_in.window(self._view(first, block.conv_in), i, j)
            hidden = hidden + block.aux_in(concat_elu(u[:, :, :, j : j + 1]))
            second[:, :, 1 + i, 1 + j] = block.dropout(concat_elu(hidden))[:, :, 0, 0]
            gates = block.conv_out.window(self._view(second, block.conv_out), i, j)
            ul = block.gate(ul, gates, _pixel_of(bias, i, j))
        return net.out(F.elu(ul))[:, :, 0, 0]


def _row(bias: torch.Tensor | float, i: int) -> torch.Tensor | float:
    return bias[:, :, i : i + 1] if torch.is_tensor(bias) else bias


def _pixel_of(bias: torch.Tensor | float, i: int, j: int) -> torch.Tensor | float:
    return bias[:, :, i : i + 1, j : j + 1] if torch.is_tensor(bias) else bias
