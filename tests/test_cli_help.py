"""Every --help is rendered through the real (rich) console and lists what the registries hold, and
``config show --keys`` lists every key the config declares."""

from __future__ import annotations

import re

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from chromaproxy.cli import app
from chromaproxy.config import all_keys, load_config
from chromaproxy.config_keys import key_table
from chromaproxy.data.sources import SOURCES
from chromaproxy.eval.protocols import PROTOCOLS
from chromaproxy.models import BACKBONES
from chromaproxy.tasks import TASKS


def _command_paths(group, prefix=()):
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _command_paths(command, (*prefix, name))
        else:
            yield (*prefix, name)


def _help(*path: str) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.output).split())  # the text, without the boxes' wrapping


COMMANDS = sorted(_command_paths(get_command(app)))


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_help_renders_with_an_example_and_no_unfilled_placeholder(path):
    text = _help(*path)
    assert "Example" in text, path
    assert not re.search(r"\{(tasks|backbones|protocols|datasets)\}", text)


@pytest.mark.parametrize("group", [(), ("data",), ("config",)], ids=lambda g: " ".join(g) or "top")
def test_every_command_group_help_shows_an_example(group):
    assert "Example" in _help(*group)


def test_flags_show_no_value_placeholder():
    for command, flag in ((["report"], "--visuals"), (["data", "info"], "--skip-bad"), (["pretrain"], "--dry-run")):
        result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "120"})
        line = next(line for line in result.output.splitlines() if flag in line)
        assert "<bool>" not in line, line


def test_best_checkpoint_help_names_val_size():
    assert "data.val_size" in _help("evaluate")


def test_pretrain_help_lists_every_task_backbone_and_dataset_and_keeps_list_examples():
    text = _help("pretrain")
    for name in [*TASKS, *BACKBONES, *SOURCES]:
        assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text), name
    assert "tasks=[supervised,rotation]" in text and "task_weights=[1,1]" in text


def test_evaluate_help_lists_every_protocol_and_data_info_every_dataset():
    evaluate = _help("evaluate")
    assert all(name in evaluate for name in PROTOCOLS) and "knn.ks=[10]" in evaluate
    data = _help("data", "info")
    assert all(name in data for name in SOURCES)


def test_config_keys_lists_every_key_with_a_type_and_the_preset_value():
    cfg = load_config(None, ["train.lr=0.05"])
    rows = {row.key: row for row in key_table(cfg)}
    assert list(rows) == all_keys(cfg)
    assert rows["train.lr"].type == "float > 0" and rows["train.lr"].default == "0.05"
    assert rows["train.lr"].comment == "base learning rate"
    assert rows["model.blocks"].type == "int in [3, 5]"
    assert rows["train.optimizer"].type == "one of sgd|adam|adamw"
    assert rows["seed"].comment.startswith("seeds weights")
    assert rows["colorization.hidden"].type == "int >= 0"
    assert all(row.type for row in rows.values())


def test_config_show_keys_prints_the_table():
    result = CliRunner().invoke(app, ["config", "show", "--keys"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "train.lr" in result.output and "base learning rate" in result.output and "knn.ks" in result.output


def test_the_command_line_module_loads_without_torch():
    import subprocess
    import sys

    code = "import sys, chromaproxy.cli; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", "cli imports torch at load: every --help and typo pays for it"
