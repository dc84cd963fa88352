"""The layer contract (DESIGN.md §4), checked on every backbone in the registry, unchanged for new ones.

A new entry in ``BACKBONES`` is picked up automatically and built with ``build_backbone(name,
in_channels=..., width=...)``; NIN additionally runs with 3, 4 and 5 blocks. The NIN-specific checks
(RotNet's channel counts, init, errors) follow at the end.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from chromaproxy.errors import UserError
from chromaproxy.models import BACKBONES, Backbone, build_backbone
from chromaproxy.models.nin import NIN

SIZE = 32
EXTRA_CASES = {"nin": [dict(in_channels=3, width=0.25, blocks=3), dict(in_channels=3, width=0.25, blocks=5)]}


def cases() -> list:
    """(name, construction kwargs) for every registered backbone."""
    found = []
    for name in BACKBONES:
        settings = [dict(in_channels=c, width=w) for c in (1, 2, 3) for w in (0.25, 1.0)]
        found += [(name, kwargs) for kwargs in settings + EXTRA_CASES.get(name, [])]
    return found


def case_id(case) -> str:
    name, kwargs = case
    return name + "-" + "-".join(f"{k}{v}" for k, v in kwargs.items())


@pytest.fixture(params=cases(), ids=case_id)
def built(request) -> tuple[Backbone, torch.Tensor]:
    """An eval-mode backbone and a small input batch for it."""
    name, kwargs = request.param
    torch.manual_seed(0)
    backbone = build_backbone(name, **kwargs).eval()
    return backbone, torch.randn(2, kwargs["in_channels"], SIZE, SIZE)


def test_feature_info_is_ordered_and_named_uniquely(built):
    backbone, _ = built
    names = backbone.tap_names
    assert names and len(set(names)) == len(names)
    strides = [tap.stride for tap in backbone.feature_info]
    assert strides == sorted(strides) and all(tap.channels >= 1 for tap in backbone.feature_info)


@torch.no_grad()
def test_shapes_match_feature_info_and_are_finite(built):
    backbone, x = built
    features = backbone.forward_features(x, "all")
    assert list(features) == backbone.tap_names
    for tap in backbone.feature_info:
        assert features[tap.name].shape == (2, tap.channels, SIZE // tap.stride, SIZE // tap.stride), tap.name
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
    assert list(backbone.forward_features(x, f"{names[-1]}, {names[0]}")) == [names[0], names[-1]]


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
