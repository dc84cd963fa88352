"""Backbone registry: every entry follows the layer contract in ``models/base.py``.

An entry is a callable ``(in_channels, width, blocks) -> Backbone``; backbones without a block count (all
but NIN) ignore ``blocks``. Names without a suffix are the 32 px (CIFAR-scale) networks, ``*_imagenet``
the 224 px ones (``Backbone.input_size``); docs/backbones.md tabulates their taps. Adding a backbone is one
file plus one line here, and ``tests/test_backbone_contract.py`` checks it without changes.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

from chromaproxy.errors import UserError
from chromaproxy.models.alexnet import AlexNet
from chromaproxy.models.base import Backbone, TapInfo
from chromaproxy.models.convnet13 import ConvNet13
from chromaproxy.models.nin import NIN
from chromaproxy.models.pic_embedding import PicEmbedding
from chromaproxy.models.pixels import Pixels
from chromaproxy.models.resnet import ResNet
from chromaproxy.models.shake_shake import ShakeShakeResNet
from chromaproxy.models.vgg import VGG16BN
from chromaproxy.models.wrn import WideResNet

BACKBONES: dict[str, Callable[..., Backbone]] = {
    "nin": lambda in_channels, width, blocks: NIN(in_channels, blocks=blocks, width=width),
    "convnet13": lambda in_channels, width, blocks: ConvNet13(in_channels, width=width),
    "resnet18": lambda in_channels, width, blocks: ResNet(18, in_channels, width, stem_kind="cifar"),
    "resnet34": lambda in_channels, width, blocks: ResNet(34, in_channels, width, stem_kind="cifar"),
    "resnet50": lambda in_channels, width, blocks: ResNet(50, in_channels, width, stem_kind="cifar"),
    "resnet18_imagenet": lambda in_channels, width, blocks: ResNet(18, in_channels, width, stem_kind="imagenet"),
    "resnet34_imagenet": lambda in_channels, width, blocks: ResNet(34, in_channels, width, stem_kind="imagenet"),
    "resnet50_imagenet": lambda in_channels, width, blocks: ResNet(50, in_channels, width, stem_kind="imagenet"),
    "wrn28_2": lambda in_channels, width, blocks: WideResNet(28, 2, in_channels, width=width),
    "wrn28_10": lambda in_channels, width, blocks: WideResNet(28, 10, in_channels, width=width),
    "shake26_2x96d": lambda in_channels, width, blocks: ShakeShakeResNet(96, in_channels, width=width),
    "vgg16_bn": lambda in_channels, width, blocks: VGG16BN(in_channels, width=width),
    "alexnet": lambda in_channels, width, blocks: AlexNet(in_channels, width, scale="cifar"),
    "alexnet_imagenet": lambda in_channels, width, blocks: AlexNet(in_channels, width, scale="imagenet"),
    "pic_embed": lambda in_channels, width, blocks: PicEmbedding(in_channels, width, strided=1),
    "pic_embed128": lambda in_channels, width, blocks: PicEmbedding(in_channels, width, strided=2),
    "pixels": lambda in_channels, width, blocks: Pixels(in_channels),
}


def check_backbone_name(name: str) -> None:
    """Refuse an unregistered ``model.name`` (config time, before a run directory exists)."""
    if name not in BACKBONES:
        close = difflib.get_close_matches(name, BACKBONES, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise UserError(f"unknown backbone model.name={name}: {hint}available: {', '.join(BACKBONES)}")


def build_backbone(name: str, *, in_channels: int, width: float = 1.0, blocks: int = 4) -> Backbone:
    """The backbone ``model.name`` for ``in_channels`` input channels (see ``models.inputs``)."""
    check_backbone_name(name)
    if width <= 0:
        raise UserError(f"model.width={width} must be positive (1 = the paper's channels, 0.5 = half)")
    return BACKBONES[name](in_channels=in_channels, width=width, blocks=blocks)


__all__ = ["BACKBONES", "Backbone", "TapInfo", "build_backbone", "check_backbone_name"]
