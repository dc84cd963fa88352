"""Architecture checks for each backbone beyond the generic contract (tests/test_backbone_contract.py):
the papers' channel tables and parameter counts, the tap tables of docs/backbones.md, map sizes at the
design input side, width scaling, and init.

Parameter counts are of the backbone alone (no classifier), recomputed here from the published layer tables
or from the well-known totals minus the classifier, so a wrong kernel, a stray bias or a missing shortcut
changes them. Full-width networks are only built, never run; forward passes use small widths.
"""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from chromaproxy.errors import UserError
from chromaproxy.models import BACKBONES, Backbone, build_backbone
from chromaproxy.models.alexnet import AlexNet
from chromaproxy.models.convnet13 import ConvNet13
from chromaproxy.models.resnet import ResNet
from chromaproxy.models.wrn import WideResNet
from conftest import single_thread

VGG_BLOCKS = [[64] * 2, [128] * 2, [256] * 3, [512] * 3, [512] * 3]  # configuration D
VGG_TAPS = [(f"conv{b + 1}_{i + 1}", c, 2**b) for b, block in enumerate(VGG_BLOCKS) for i, c in enumerate(block)]
TAPS = {  # (name, channels, stride) at width 1: the table of docs/backbones.md
    "nin": [("block1", 96, 2), ("block2", 192, 4), ("block3", 192, 4), ("block4", 192, 4)],
    "convnet13": [("block1", 128, 2), ("block2", 256, 4), ("block3", 128, 4)],
    "resnet18": [("conv1", 64, 1), ("layer1", 64, 1), ("layer2", 128, 2), ("layer3", 256, 4), ("layer4", 512, 8)],
    "resnet34": [("conv1", 64, 1), ("layer1", 64, 1), ("layer2", 128, 2), ("layer3", 256, 4), ("layer4", 512, 8)],
    "resnet50": [("conv1", 64, 1), ("layer1", 256, 1), ("layer2", 512, 2), ("layer3", 1024, 4), ("layer4", 2048, 8)],
    "resnet18_imagenet": [("conv1", 64, 2), ("layer1", 64, 4), ("layer2", 128, 8), ("layer3", 256, 16),
                          ("layer4", 512, 32)],
    "resnet34_imagenet": [("conv1", 64, 2), ("layer1", 64, 4), ("layer2", 128, 8), ("layer3", 256, 16),
                          ("layer4", 512, 32)],
    "resnet50_imagenet": [("conv1", 64, 2), ("layer1", 256, 4), ("layer2", 512, 8), ("layer3", 1024, 16),
                          ("layer4", 2048, 32)],
    "wrn28_2": [("conv1", 16, 1), ("layer1", 32, 1), ("layer2", 64, 2), ("layer3", 128, 4)],
    "wrn28_10": [("conv1", 16, 1), ("layer1", 160, 1), ("layer2", 320, 2), ("layer3", 640, 4)],
    "shake26_2x96d": [("conv1", 16, 1), ("layer1", 96, 1), ("layer2", 192, 2), ("layer3", 384, 4)],
    "vgg16_bn": VGG_TAPS,
    "alexnet": [("conv1", 96, 1), ("conv2", 256, 2), ("conv3", 384, 4), ("conv4", 384, 4), ("conv5", 256, 4)],
    "alexnet_imagenet": [("conv1", 96, 4), ("conv2", 256, 8), ("conv3", 384, 16), ("conv4", 384, 16),
                         ("conv5", 256, 16)],
    "pic_embed": [("stage1", 32, 1), ("stage2", 64, 2), ("stage3", 128, 2), ("stage4", 256, 2)],
    "pic_embed128": [("stage1", 32, 1), ("stage2", 64, 2), ("stage3", 128, 4), ("stage4", 256, 4)],
    "pixels": [("pixels", 3, 1)],
}


@pytest.fixture(autouse=True, scope="module")
def one_thread_for_the_module():
    with single_thread():
        yield


@functools.cache
def full_width(name: str) -> Backbone:
    """The paper's network (width 1, RGB), built once per session; callers never change it."""
    return build_backbone(name, in_channels=3)


def parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def convs(module: nn.Module) -> list[nn.Conv2d]:
    return [m for m in module.modules() if isinstance(m, nn.Conv2d)]


def bn_conv_parameters(in_channels: int, channels: list[int], kernel: int = 3) -> int:
    """A chain of bias-free convs, each followed by BN (scale and shift)."""
    total = 0
    for out in channels:
        total, in_channels = total + kernel * kernel * in_channels * out + 2 * out, out
    return total


# ------------------------------------------------------------------ every backbone


def test_tap_tables_at_width_one():
    assert set(TAPS) == set(BACKBONES), "add the new backbone's taps here and to docs/backbones.md"
    for name, table in TAPS.items():
        assert [(t.name, t.channels, t.stride) for t in full_width(name).feature_info] == table, name


@pytest.mark.parametrize("name", sorted(set(BACKBONES) - {"pixels"}))  # the identity has no channels of its own
def test_half_width_halves_every_channel_count(name):
    full, half = full_width(name), build_backbone(name, in_channels=1, width=0.5)
    assert [c.out_channels for c in convs(half)] == [round(c.out_channels / 2) for c in convs(full)]
    assert [t.channels for t in half.feature_info] == [round(t.channels / 2) for t in full.feature_info]
    assert convs(half)[0].in_channels == 1
    assert all(t.channels >= 1 for t in build_backbone(name, in_channels=2, width=0.001).feature_info)


GATED = {"pic_embed", "pic_embed128"}  # PIC's gated residual blocks: biased convs, no BatchNorm (thesis Table 5.1)


@pytest.mark.parametrize("name", sorted(set(BACKBONES) - GATED))
def test_every_conv_is_bias_free_and_followed_by_batchnorm(name):
    backbone = full_width(name)
    assert all(conv.bias is None for conv in convs(backbone))
    norms = [m for m in backbone.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(torch.equal(bn.weight, torch.ones_like(bn.weight)) and not bn.bias.any() for bn in norms)


@pytest.mark.parametrize("name", sorted(GATED))
def test_gated_backbones_have_no_batchnorm_so_a_sample_does_not_depend_on_its_batch(name):
    backbone = full_width(name).eval()
    assert not any(isinstance(m, nn.BatchNorm2d) for m in backbone.modules())
    x = torch.randn(3, 3, backbone.input_size, backbone.input_size)
    torch.testing.assert_close(backbone(x)[:1], backbone(x[:1]))


@pytest.mark.parametrize("width", [0.25, 1.0])
def test_the_pixels_backbone_is_the_identity_without_parameters(width):
    backbone = build_backbone("pixels", in_channels=2, width=width)
    x = torch.randn(2, 2, 32, 32)
    assert torch.equal(backbone.forward_features(x, ["pixels"])["pixels"], x)
    assert not list(backbone.parameters()) and backbone.feature_info[0].channels == 2


def test_feature_size_rejects_an_unknown_tap():
    with pytest.raises(UserError, match="did you mean 'layer4'"):
        full_width("resnet18").feature_size("layer5", 32)


# ------------------------------------------------------------------ ResNet


TORCHVISION_TOTALS = {18: 11_689_512, 34: 21_797_672, 50: 25_557_032}  # with the 1000-class fc


@pytest.mark.parametrize("depth", [18, 34, 50])
def test_resnet_parameter_counts_are_torchvisions_without_the_fc(depth):
    features = 2048 if depth == 50 else 512
    imagenet = TORCHVISION_TOTALS[depth] - (features * 1000 + 1000)
    assert parameters(full_width(f"resnet{depth}_imagenet")) == imagenet
    assert parameters(full_width(f"resnet{depth}")) == imagenet - 7 * 7 * 3 * 64 + 3 * 3 * 3 * 64  # CIFAR stem


def test_resnet_parameter_counts_spelled_out():
    assert parameters(full_width("resnet18_imagenet")) == 11_176_512
    assert parameters(full_width("resnet50_imagenet")) == 23_508_032


def test_resnet50_bottleneck_strides_its_3x3_conv_and_projects_the_shortcut():
    first = full_width("resnet50").stages["layer2"][0]
    assert [(c.kernel_size[0], c.stride[0], c.out_channels) for c in convs(first.residual)] == [
        (1, 1, 128), (3, 2, 128), (1, 1, 512)]
    assert [(c.kernel_size[0], c.stride[0], c.out_channels) for c in convs(first.shortcut)] == [(1, 2, 512)]
    assert isinstance(full_width("resnet50").stages["layer2"][1].shortcut, nn.Identity)


@torch.no_grad()
def test_cifar_stem_keeps_32px_and_imagenet_stem_gives_56px_at_layer1():
    cifar = build_backbone("resnet18", in_channels=3, width=0.25).eval()
    maps = cifar.forward_features(torch.randn(1, 3, 32, 32), ["conv1", "layer1", "layer4"])
    assert [m.shape[-1] for m in maps.values()] == [32, 32, 4]
    imagenet = build_backbone("resnet18_imagenet", in_channels=3, width=0.25).eval()
    maps = imagenet.forward_features(torch.randn(1, 3, 224, 224), "all")
    assert [m.shape[-1] for m in maps.values()] == [112, 56, 28, 14, 7]
    assert not any(isinstance(m, nn.MaxPool2d) for m in cifar.modules())
    assert isinstance(imagenet.stages["layer1"][0], nn.MaxPool2d) and imagenet.input_size == 224


@torch.no_grad()
def test_zero_init_residual_makes_each_block_its_shortcut():
    torch.manual_seed(0)
    resnet = ResNet(18, in_channels=3, width=0.25, zero_init_residual=True).eval()
    zeroed = [m for m in resnet.modules() if isinstance(m, nn.BatchNorm2d) and not m.weight.any()]
    assert len(zeroed) == 8 and all(conv.weight.any() for conv in convs(resnet))  # one BN per block
    stem = resnet.stages["conv1"](torch.randn(2, 3, 32, 32))  # post-ReLU, so relu(x + 0) == x
    assert torch.allclose(resnet.stages["layer1"](stem), stem)
    assert not torch.allclose(ResNet(18, in_channels=3, width=0.25).eval().stages["layer1"](stem), stem)


def test_resnet_kaiming_fan_out_init():
    conv = full_width("resnet50").stages["layer4"][0].residual[0]  # 1x1, 2048 → 512
    assert abs(float(conv.weight.detach().std()) - (2 / 512) ** 0.5) < 0.005


def test_resnet_and_wrn_reject_unknown_variants():
    with pytest.raises(UserError, match="18, 34, 50"):
        ResNet(101)
    with pytest.raises(UserError, match="6n"):
        WideResNet(depth=27)
    with pytest.raises(UserError, match="cifar"):
        AlexNet(scale="tiny")


# ------------------------------------------------------------------ Wide ResNet


def wrn_parameters(k: int, blocks: int = 4) -> int:
    """WRN-28-k without the classifier, from the paper's table: conv 16, 3 groups of pre-activation blocks
    (BN, 3x3 conv, BN, 3x3 conv; a 1x1 shortcut conv where the channel count changes), final BN."""
    total, in_channels = 3 * 3 * 3 * 16, 16
    for out in (16 * k, 32 * k, 64 * k):
        for index in range(blocks):
            shortcut = in_channels * out if index == 0 and in_channels != out else 0
            total += 2 * in_channels + 9 * in_channels * out + 2 * out + 9 * out * out + shortcut
            in_channels = out
    return total + 2 * in_channels


def test_wrn_parameter_counts_match_the_paper():
    wrn10, wrn2 = parameters(full_width("wrn28_10")), parameters(full_width("wrn28_2"))
    assert wrn10 == wrn_parameters(10) and round(wrn10 + 640 * 10 + 10, -5) == 36_500_000  # the paper's 36.5M
    assert wrn2 == wrn_parameters(2) and round(wrn2 + 128 * 10 + 10, -5) == 1_500_000  # FixMatch's 1.5M


@torch.no_grad()
def test_wrn_is_pre_activation_and_its_deepest_tap_is_normalised():
    wrn = build_backbone("wrn28_2", in_channels=3, width=0.5).eval()
    block = wrn.stages["layer2"][0]
    assert isinstance(block.preact[0], nn.BatchNorm2d) and block.convdim is not None
    assert wrn.stages["layer2"][1].convdim is None
    assert not any(isinstance(m, nn.LeakyReLU) for m in wrn.modules())
    maps = wrn.forward_features(torch.randn(2, 3, 32, 32), ["layer2", "layer3"])
    assert (maps["layer2"] < 0).any() and (maps["layer3"] >= 0).all()  # a raw residual sum, then BN + ReLU


@torch.no_grad()
def test_wrn_shortcut_convolves_the_pre_activated_input():
    """The official block: o1 = relu(bn0(x)); out = residual(o1) + convdim(o1) where the shape changes."""
    block = build_backbone("wrn28_2", in_channels=3, width=0.5).eval().stages["layer2"][0]
    x = torch.randn(2, block.preact[0].num_features, 8, 8)
    activated = torch.relu(block.preact[0](x))
    assert torch.allclose(block(x), block.residual(activated) + block.convdim(activated), atol=1e-6)
    assert not torch.allclose(block(x), block.residual(activated) + block.convdim(x), atol=1e-3)


# ------------------------------------------------------------------ Shake-Shake


def shake_parameters(base: int = 96) -> int:
    """Shake-Shake-26 2x``base``d without the classifier: conv 16 + BN, 3 stages of 4 blocks of two
    (3x3 conv, BN, 3x3 conv, BN) branches; where the shape changes a shortcut of two half-width 1x1 convs + BN."""
    total, in_channels = 3 * 3 * 3 * 16 + 2 * 16, 16
    for out in (base, 2 * base, 4 * base):
        for index in range(4):
            shortcut = in_channels * out + 2 * out if index == 0 else 0  # two halves of in x out/2, then BN
            total += 2 * (9 * in_channels * out + 2 * out + 9 * out * out + 2 * out) + shortcut
            in_channels = out
    return total


def test_shake_shake_parameter_count_matches_the_paper():
    count = parameters(full_width("shake26_2x96d"))
    assert count == shake_parameters() and round(count + 384 * 10 + 10, -5) == 26_200_000  # Gastaldi's 26.2M


def test_shake_shake_mixes_branches_by_alpha_forward_and_an_independent_beta_backward():
    from chromaproxy.models.shake_shake import shake

    torch.manual_seed(0)
    a, b = torch.randn(64, 2, 3, 3, requires_grad=True), torch.randn(64, 2, 3, 3, requires_grad=True)
    mixed = shake(a, b, training=True)
    alpha = ((mixed - b) / (a - b)).detach()  # (B, 2, 3, 3), one value per image
    assert torch.allclose(alpha, alpha[:, :1, :1, :1].expand_as(alpha), atol=1e-4)
    assert 0 < alpha.min() and alpha.max() < 1 and alpha[:, 0, 0, 0].std() > 0.1  # per image, not one per batch
    mixed.backward(torch.ones_like(mixed))
    beta = a.grad[:, 0, 0, 0]
    assert torch.allclose(a.grad + b.grad, torch.ones_like(a))  # the gradient is split, not scaled
    assert not torch.allclose(beta, alpha[:, 0, 0, 0], atol=1e-2)  # drawn anew for the backward pass
    assert torch.equal(shake(a, b, training=False), 0.5 * (a + b))


def test_shake_shake_evaluates_deterministically_and_trains_stochastically():
    model = build_backbone("shake26_2x96d", in_channels=3, width=0.125)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        model.train()
        assert not torch.allclose(model.forward_features(x, ["layer1"])["layer1"], model.forward_features(x, ["layer1"])["layer1"])
        model.eval()
        assert torch.equal(model.forward_features(x, ["layer3"])["layer3"], model.forward_features(x, ["layer3"])["layer3"])


# ------------------------------------------------------------------ ConvNet-13


@torch.no_grad()
def test_convnet13_is_laine_and_ailas_conv_large():
    net = full_width("convnet13")
    layers = [(c.out_channels, c.kernel_size[0], c.padding[0]) for c in convs(net)]
    assert layers == [(128, 3, 1)] * 3 + [(256, 3, 1)] * 3 + [(512, 3, 0), (256, 1, 0), (128, 1, 0)]
    activations = [m for m in net.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU))]
    assert len(activations) == 9 and all(isinstance(a, nn.LeakyReLU) for a in activations)
    assert {a.negative_slope for a in activations} == {0.1}
    expected = bn_conv_parameters(3, [128] * 3 + [256] * 3 + [512]) + bn_conv_parameters(512, [256, 128], kernel=1)
    assert parameters(net) == expected
    assert round(parameters(net), -5) == 3_100_000  # the 3.1M of the semi-supervised literature
    small = build_backbone("convnet13", in_channels=3, width=0.25).eval()
    assert small(torch.randn(1, 3, 32, 32)).shape[-2:] == (6, 6)  # the paper's 6x6 before global pooling
    assert [small.feature_size(tap, 32) for tap in small.tap_names] == [16, 8, 6]


def test_convnet13_init_accounts_for_the_leaky_slope():
    conv = ConvNet13(in_channels=3).stages["block2"][1][0]  # 3x3, 256 → 256
    assert abs(float(conv.weight.detach().std()) - (2 / (1.01 * 9 * 256)) ** 0.5) < 0.002


# ------------------------------------------------------------------ VGG-16-BN


def test_vgg16_bn_parameter_count_is_the_conv_table():
    channels = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    assert parameters(full_width("vgg16_bn")) == bn_conv_parameters(3, channels) == 14_718_912  # ~14.7M
    assert [c.out_channels for c in convs(full_width("vgg16_bn"))] == channels


@torch.no_grad()
def test_vgg16_bn_taps_are_full_resolution_at_32_and_224_px():
    vgg = build_backbone("vgg16_bn", in_channels=3, width=0.125).eval()
    for side in (32, 224):
        maps = vgg.forward_features(torch.randn(1, 3, side, side), "all")
        assert [m.shape[-1] for m in maps.values()] == [side // stride for _, _, stride in VGG_TAPS]
        assert all((m >= 0).all() for m in maps.values())  # post-ReLU
    assert isinstance(vgg.stages["conv2_1"][0], nn.MaxPool2d) and isinstance(vgg.stages["conv1_2"][0], nn.Conv2d)


# ------------------------------------------------------------------ AlexNet


@torch.no_grad()
def test_alexnet_imagenet_has_krizhevskys_map_sizes():
    alexnet = build_backbone("alexnet_imagenet", in_channels=3, width=0.25).eval()
    maps = alexnet.forward_features(torch.randn(1, 3, 224, 224), "all")
    assert [m.shape[-1] for m in maps.values()] == [55, 27, 13, 13, 13]
    assert [alexnet.feature_size(tap, 224) for tap in alexnet.tap_names] == [55, 27, 13, 13, 13]
    first = convs(alexnet)[0]
    assert (first.kernel_size, first.stride, first.padding) == ((11, 11), (4, 4), (2, 2))


@torch.no_grad()
def test_alexnet_cifar_adaptation_keeps_8px_at_conv5():
    alexnet = build_backbone("alexnet", in_channels=2, width=0.25).eval()
    maps = alexnet.forward_features(torch.randn(1, 2, 32, 32), "all")
    assert [m.shape[-1] for m in maps.values()] == [32, 16, 8, 8, 8]
    assert [c.kernel_size[0] for c in convs(alexnet)] == [5, 5, 3, 3, 3]


def test_alexnet_channels_are_the_single_tower_counts():
    assert [c.out_channels for c in convs(full_width("alexnet_imagenet"))] == [96, 256, 384, 384, 256]
    expected = bn_conv_parameters(3, [96], 11) + bn_conv_parameters(96, [256], 5)
    assert parameters(full_width("alexnet_imagenet")) == expected + bn_conv_parameters(256, [384, 384, 256])
