"""Every numeric config key declares its valid range, and a value outside it is one line naming key, value
and range, whether it comes from the command line or a preset; a limit past the dataset is a warning."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import types
import typing

import pytest

from chromaproxy.config import Config, load_config
from chromaproxy.engine.data import prepare_data
from chromaproxy.errors import UserError
from chromaproxy.ranges import Range, bounds
from conftest import REPO

PRESET = REPO / "configs/supervised-cifar10-quick.yaml"


def _numeric_keys(cls: type = Config, prefix: str = "") -> list[tuple[str, typing.Any, bool]]:
    """(dotted key, the hint of its number, whether it is a list) for every int or float key."""
    found = []
    for name, hint in typing.get_type_hints(cls, include_extras=True).items():
        if dataclasses.is_dataclass(hint):
            found += _numeric_keys(hint, f"{prefix}{name}.")
            continue
        inner = hint
        if typing.get_origin(inner) in (typing.Union, types.UnionType):
            inner = next(a for a in typing.get_args(inner) if a is not type(None))
        listed = typing.get_origin(inner) is list
        if listed:
            inner = typing.get_args(inner)[0]
        base = typing.get_args(inner)[0] if typing.get_origin(inner) is typing.Annotated else inner
        if base in (int, float):
            found.append((f"{prefix}{name}", inner, listed))
    return found


NUMERIC = _numeric_keys()


def test_the_walk_finds_the_numeric_keys():
    keys = {key for key, *_ in NUMERIC}
    assert len(keys) > 80
    assert {"train.lr", "data.limit", "knn.ks", "colorization.points", "train.checkpoint_minutes"} <= keys


@pytest.mark.parametrize("key,hint,listed", NUMERIC, ids=[key for key, *_ in NUMERIC])
def test_every_numeric_key_has_a_range_and_refuses_a_value_outside_it(key, hint, listed):
    declared = bounds(hint)
    assert isinstance(declared, Range), f"{key} declares no range: type it e.g. Positive[int] (chromaproxy.ranges)"
    bad = declared.outside()
    base = typing.get_args(hint)[0]
    value = int(bad) if base is int else float(bad)
    with pytest.raises(UserError) as caught:
        load_config(PRESET, [f"{key}={[value] if listed else value}"])
    message = str(caught.value)
    assert key in message and str(value) in message and "out of range" in message
    assert declared.describe(base is int) in message and "\n" not in message


def test_every_value_inside_the_range_is_still_accepted():
    cfg = load_config(PRESET, ["train.lr=1e-5", "data.limit=1", "knn.ks=[1,200]", "train.milestones=[0.01,0.99]",
                               "train.warmup=0", "rotation.angles=[0,359]", "model.blocks=5"])
    assert cfg.train.lr == 1e-5 and cfg.knn.ks == [1, 200] and cfg.model.blocks == 5


def test_integer_ranges_read_as_whole_numbers():
    with pytest.raises(UserError, match=r"colorization.points=0 .* must be >= 1$"):
        load_config(PRESET, ["colorization.points=0"])
    with pytest.raises(UserError, match=r"knn.ks\[1\]=0 .* must be >= 1$"):
        load_config(PRESET, ["knn.ks=[10,0]"])


def test_a_preset_value_out_of_range_names_the_file(tmp_path):
    preset = tmp_path / "bad.yaml"
    preset.write_text("base: " + str(PRESET) + "\ntrain:\n  momentum: 1.5\n")
    with pytest.raises(UserError, match=r"train.momentum=1.5 from .*bad.yaml is out of range: it must be in \[0, 1\)"):
        load_config(preset)


@pytest.mark.parametrize("override", ["data.limit=0", "train.lr=-1"])
def test_the_command_line_prints_one_line_and_no_traceback(override):
    result = subprocess.run([sys.executable, "-m", "chromaproxy", "pretrain", str(PRESET), override, "--dry-run"],
                            capture_output=True, text=True, env=dict(os.environ))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert override.split("=")[0] in result.stderr and "out of range" in result.stderr


def test_a_limit_past_the_dataset_warns_how_many_images_are_used(cifar_root):
    data = prepare_data(load_config(PRESET, [f"data.root={cifar_root}", "data.limit=100000"]), None, progress=False)
    assert len(data.train) == 50_000
    assert data.warnings == [
        "data.limit=100000 is more than the 50000 training images of data.name=cifar10; all 50000 are used"
    ]
    within = prepare_data(load_config(PRESET, [f"data.root={cifar_root}", "data.limit=1000"]), None, progress=False)
    assert len(within.train) == 1000 and within.warnings == []
