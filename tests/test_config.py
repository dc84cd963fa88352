from pathlib import Path

import pytest

from chromaproxy.config import all_keys, load_config
from chromaproxy.errors import UserError
from conftest import preset_overrides

REPO = Path(__file__).resolve().parents[1]
PRESETS = sorted((REPO / "configs").glob("*.yaml"))


def test_defaults_and_typed_overrides():
    cfg = load_config(None, ["train.lr=0.05", "train.milestones=[0.5,0.75]", "data.limit=100", "model.input=L"])
    assert cfg.train.lr == 0.05 and isinstance(cfg.train.lr, float)
    assert cfg.train.milestones == [0.5, 0.75]
    assert cfg.data.limit == 100
    assert cfg.model.input == "L"


def test_int_is_accepted_for_float_but_not_the_reverse():
    assert load_config(None, ["train.lr=1"]).train.lr == 1.0
    with pytest.raises(UserError, match="train.batch_size=0.5 .* not a valid int"):
        load_config(None, ["train.batch_size=0.5"])


def test_unknown_key_names_the_closest_valid_key():
    with pytest.raises(UserError, match="unknown config key 'train.lrr': did you mean 'train.lr'"):
        load_config(None, ["train.lrr=0.1"])
    with pytest.raises(UserError, match="did you mean 'data.limit'"):
        load_config(None, ["data.limt=5"])


def test_unknown_key_in_a_preset_file(tmp_path):
    preset = tmp_path / "bad.yaml"
    preset.write_text("model:\n  widht: 0.5\n")
    with pytest.raises(UserError, match="'model.widht': did you mean 'model.width'"):
        load_config(preset)


def test_choices_and_nullable_values():
    with pytest.raises(UserError, match="choose one of: sgd, adam, adamw"):
        load_config(None, ["train.optimizer=rmsprop"])
    assert load_config(None, ["train.max_steps=null"]).train.max_steps is None
    assert load_config(None, ["data.path=2024"]).data.path == "2024"


def test_lists_and_task_weights_must_agree():
    with pytest.raises(UserError, match="one weight per task"):
        load_config(None, ["task_weights=[1,2]"])
    with pytest.raises(UserError, match="unknown task 'rotatoin'"):
        load_config(None, ["tasks=[rotatoin]"])


def test_malformed_override():
    with pytest.raises(UserError, match="not key=value"):
        load_config(None, ["train.lr"])


def test_base_preset_is_inherited(tmp_path):
    (tmp_path / "paper.yaml").write_text("train:\n  epochs: 200\n  lr: 0.1\nmodel:\n  width: 1.0\n")
    (tmp_path / "quick.yaml").write_text("base: paper.yaml\ntrain:\n  epochs: 3\n")
    cfg = load_config(tmp_path / "quick.yaml")
    assert (cfg.train.epochs, cfg.train.lr, cfg.model.width) == (3, 0.1, 1.0)
    assert cfg.preset == "quick"


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(UserError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("train: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_config(broken)


@pytest.mark.parametrize("preset", PRESETS, ids=[p.stem for p in PRESETS])
def test_every_shipped_preset_loads(preset):
    cfg = load_config(preset, preset_overrides(preset))
    assert cfg.preset == preset.stem


def test_every_key_is_listed_once():
    keys = all_keys()
    assert len(keys) == len(set(keys))
    assert {"data.name", "model.input", "train.max_steps", "supervised.label_smoothing", "seed"} <= set(keys)


def test_exponent_without_a_dot_is_a_float():
    """YAML 1.1 reads 5e-4 as a string; the paper's weight decay must still be typeable as written."""
    cfg = load_config(None, ["train.weight_decay=5e-4", "train.lr=1E-2"])
    assert cfg.train.weight_decay == 5e-4 and cfg.train.lr == 0.01
