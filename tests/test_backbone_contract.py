"""The layer contract (DESIGN.md §4), checked on every backbone in the registry, unchanged for new ones.

A new entry in ``BACKBONES`` is picked up automatically and built with ``build_backbone(name,
in_channels=..., width=...)``; NIN additionally runs with 3, 4 and 5 blocks. The NIN-specific checks
(RotNet's channel counts, init, errors) follow at the end; the other architectures' own checks are in
``tests/test_backbones.py``.

Cases: every backbone with every input representation (1, 2 and 3 channels) at width 0.25, and the
paper's network (width 1.0) with RGB. Full width with 1 and 2 channels would only change the first conv's
input count, already covered at width 0.25, for 3x the time.

Speed (about 20 s for the file on 2 busy shared CPU cores): one intra-op thread (``conftest.single_thread``),
each case built once and deep-copied per test, and the 224 px networks (``Backbone.input_size``) run at
64 px: 224 would cost 12x the compute, and 64 is the smallest multiple of 32 (ResNet's deepest stride) at
which every tap of every 224 px network is still at least 2x2, so BatchNorm in training sees several
values per channel and the border that AlexNet's 11x11/4 conv1 and unpadded pools trim is still exercised;
``tests/test_backbones.py`` checks the 224 px sizes themselves.

Map sides are compared exactly with ``Backbone.feature_size``: ``side // stride``, unless a backbone
states its border trim from its conv arithmetic (ConvNet-13's valid conv, AlexNet's 11x11/4 conv1 and
unpadded pools); for those the nominal stride may overstate the side by at most ``MAX_TRIM`` pixels.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from chromaproxy.errors import UserError
from chromaproxy.models import BACKBONES, Backbone, build_backbone
from chromaproxy.models.nin import NIN
from conftest import single_thread

EXTRA_CASES = {"nin": [dict(in_channels=3, width=0.25, blocks=3), dict(in_channels=3, width=0.25, blocks=5)]}
MAX_TRIM = 2  # pixels a border-trimming backbone's map may fall short of side // stride


@pytest.fixture(autouse=True, scope="module")
def one_thread_for_the_module():
    with single_thread():
        yield


def cases() -> list:
    """(name, construction kwargs) for every registered backbone."""
    found = []
    for name in BACKBONES:
        settings = [dict(in_channels=c, width=0.25) for c in (1, 2, 3)] + [dict(in_channels=3, width=1.0)]
        found += [(name, kwargs) for kwargs in settings + EXTRA_CASES.get(name, [])]
    return found


def case_id(case) -> str:
    name, kwargs = case
    return name + "-" + "-".join(f"{k}{v}" for k, v in kwargs.items())


def input_side(backbone: Backbone) -> int:
    """The input side a backbone is tested at (see the module docstring)."""
    return 32 if backbone.input_size <= 32 else 64


@pytest.fixture(scope="module", params=cases(), ids=case_id)
def prototype(request) -> tuple[Backbone, torch.Tensor]:
    """Each case built once (a full-width WRN-28-10 takes longer to build than to check), with its input."""
    name, kwargs = request.param
    torch.manual_seed(0)
    backbone = build_backbone(name, **kwargs)
    side = input_side(backbone)
    return backbone, torch.randn(2, kwargs["in_channels"], side, side)


@pytest.fixture
def built(prototype: tuple[Backbone, torch.Tensor]) -> tuple[Backbone, torch.Tensor]:
    """A fresh eval-mode copy of the case's backbone and a small input batch for it."""
    backbone, x = prototype
    return copy.deepcopy(backbone).eval(), x.clone()


def test_feature_info_is_ordered_and_named_uniquely(built):
    backbone, _ = built
    names = backbone.tap_names
    assert names and len(set(names)) == len(names)
    strides = [tap.stride for tap in backbone.feature_info]
    assert strides == sorted(strides) and all(tap.channels >= 1 for tap in backbone.feature_info)
    assert backbone.input_size in (32, 128, 224)  # CIFAR scale, PIC's 128 px variant, ImageNet scale


@torch.no_grad()
def test_shapes_match_feature_info_and_are_finite(built):
    backbone, x = built
    side = x.shape[-1]
    features = backbone.forward_features(x, "all")
    assert list(features) == backbone.tap_names
    for tap in backbone.feature_info:
        expected = backbone.feature_size(tap.name, side)
        assert features[tap.name].shape == (2, tap.channels, expected, expected), tap.name
        assert 1 <= expected <= side // tap.stride <= expected + MAX_TRIM, tap.name  # the stride is honest
        assert torch.isfinite(features[tap.name]).all(), tap.name


@torch.no_grad()
def test_deepest_tap_equals_forward(built):
    backbone, x = built
    deepest = backbone.tap_names[-1]
    assert torch.equal(backbone.forward_features(x, [deepest])[deepest], backbone(x))


@torch.no_grad()
def test_returns_only_requested_taps_in_depth_order(built):
    backbone, x = built
    names, everything = backbone.tap_names, backbone.forward_features(x, "all")
    for deepest in names[1:]:
        features = backbone.forward_features(x, [deepest, names[0], deepest])  # out of order, repeated
        assert list(features) == [names[0], deepest]
        assert all(torch.equal(features[k], everything[k]) for k in features)
    assert list(backbone.forward_features(x, f"{names[-1]}, {names[0]}")) == list(dict.fromkeys([names[0], names[-1]]))


def modules_run(backbone: Backbone, x: torch.Tensor, taps: list[str]) -> set[str]:
    """Names of the leaf modules that ran while computing ``taps`` (hooks here only, never in models)."""
    ran: set[str] = set()
    leaves = [(n, m) for n, m in backbone.named_modules() if not list(m.children())]
    handles = [m.register_forward_pre_hook(lambda *_, n=n: ran.add(n)) for n, m in leaves]
    with torch.no_grad():
        backbone.forward_features(x, taps)
    for handle in handles:
        handle.remove()
    return ran


def test_stops_at_the_deepest_requested_tap(built):
    backbone, x = built
    runs = [modules_run(backbone, x, [name]) for name in backbone.tap_names]
    for shallow, deep in zip(runs, runs[1:]):
        assert shallow < deep  # a strict subset: the deeper tap's own layers did not run for the shallow one
    assert runs[-1] == modules_run(backbone, x, ["all"])


def test_unknown_or_empty_taps_are_user_errors(built):
    backbone, x = built
    with pytest.raises(UserError, match=backbone.tap_names[0]):
        backbone.forward_features(x, ["no_such_tap"])
    with pytest.raises(UserError, match="no taps"):
        backbone.resolve_taps([])
    assert backbone.resolve_taps("all") == backbone.tap_names


def test_every_parameter_gets_a_gradient(built):
    backbone, x = built
    backbone.train()
    if not list(backbone.parameters()):
        pytest.skip("a backbone without parameters (the identity 'pixels') has nothing to train")
    backbone(x).square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in backbone.parameters())


# ------------------------------------------------------------------ NIN (RotNet's CIFAR network)


def conv_channels(module: nn.Module) -> list[int]:
    return [m.out_channels for m in module.modules() if isinstance(m, nn.Conv2d)]


def test_nin_matches_rotnet_channels_and_width_scales_them():
    full = NIN(in_channels=3, blocks=4)
    assert conv_channels(full.stages["block1"]) == [192, 160, 96]
    assert conv_channels(full.stages["block2"]) == conv_channels(full.stages["block4"]) == [192, 192, 192]
    kernels = [m.kernel_size[0] for m in full.modules() if isinstance(m, nn.Conv2d)]
    assert kernels == [5, 1, 1, 5, 1, 1, 3, 1, 1, 3, 1, 1]
    half = NIN(in_channels=1, blocks=3, width=0.5)
    assert conv_channels(half.stages["block1"]) == [96, 80, 48]
    taps = [(t.name, t.channels, t.stride) for t in half.feature_info]
    assert taps == [("block1", 48, 2), ("block2", 96, 4), ("block3", 96, 4)]
    assert conv_channels(NIN(width=0.001).stages["block1"]) == [1, 1, 1]


def test_nin_convs_have_no_bias_and_rotnet_init():
    nin = NIN(in_channels=3, blocks=4)
    convs = [m for m in nin.modules() if isinstance(m, nn.Conv2d)]
    assert all(conv.bias is None for conv in convs)
    wide = convs[1]  # 1x1, 192 → 160: N(0, 2 / (1·1·160))
    assert abs(float(wide.weight.detach().std()) - (2 / 160) ** 0.5) < 0.01
    norms = [m for m in nin.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(torch.equal(bn.weight, torch.ones_like(bn.weight)) and not bn.bias.any() for bn in norms)


def test_build_backbone_errors_name_the_fix():
    with pytest.raises(UserError, match="did you mean 'nin'"):
        build_backbone("nim", in_channels=3)
    with pytest.raises(UserError, match="3, 4 or 5"):
        build_backbone("nin", in_channels=3, blocks=6)
    with pytest.raises(UserError, match="model.width"):
        build_backbone("nin", in_channels=3, width=0)
