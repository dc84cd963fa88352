"""Typed run configuration: dataclass defaults, YAML presets, and type-checked ``key=value`` overrides.

Every key a user can set is a dataclass field, so one place documents each default and one function
(``_coerce``) checks every value, whether it comes from a preset or the command line. Task sections
(``supervised.*``, later ``colorization.*`` …) come from each task's ``Options`` dataclass in the task
registry, and evaluation sections (``eval.*``, ``knn.*`` …) from ``protocol_options.py``, so adding a task
or a protocol never touches this file. A preset may name a ``base:`` preset (relative path)
whose values it overrides: the quick CPU presets are the paper presets with a few keys changed.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml

from chromaproxy.errors import UserError
from chromaproxy.models import check_backbone_name
from chromaproxy.protocol_options import PROTOCOL_OPTIONS
from chromaproxy.ranges import Fraction, Milestone, Momentum, NonNegative, Positive, Range, bounds
from chromaproxy.tasks import TASKS
from chromaproxy.video_options import MineOptions


@dataclass
class DataConfig:
    name: str = "cifar10"  # cifar10 | cifar100 | cifar100-20 | stl10 | svhn | folder (chromaproxy data info NAME)
    root: str | None = None  # parent of the standard datasets; default $CHROMAPROXY_DATA, else ~/.cache/chromaproxy
    path: str | None = None  # the image folder (name=folder); for a standard dataset, its folder instead of <root>/<name>
    limit: Positive[int] | None = None  # use only the first N training images (quick runs)
    unlabeled: bool = False  # pretrain on the dataset's unlabeled split (STL-10's 100k, memory-mapped) instead of train
    image_size: Positive[int] = 32  # side of the square images the backbone sees (folder images are resized to it; STL-10: 96)
    labels_per_class: Positive[int] | None = None  # keep labels for only this many images per class (seeded, stratified)
    val_size: NonNegative[int] = 0  # training images held out for validation (stratified); enables best.* checkpoints
    test_fraction: Annotated[float, Range(0, 1, high_open=True)] = 0.0  # a folder without test/: hold out this share as its test split (seeded, stratified)
    skip_bad: bool = False  # skip (and count) unreadable files in a folder instead of stopping
    download: bool = True  # download a missing standard dataset (md5-checked) when the network allows


@dataclass
class AugmentConfig:
    crop_padding: NonNegative[int] = 4  # random crop with this much padding (0 = off)
    padding_mode: Literal["auto", "zeros", "reflect"] = "auto"  # auto: reflect for colour-target tasks, else zeros
    hflip: bool = True  # random horizontal flip
    crop_scale: list[Fraction[float]] = field(default_factory=lambda: [1.0, 1.0])  # random resized square crop: area share ~ U(low, high); [1, 1] = off
    color_jitter: list[NonNegative[float]] = field(default_factory=lambda: [0.0, 0.0, 0.0, 0.0])  # brightness, contrast, saturation, hue
    color_jitter_p: Fraction[float] = 0.8  # probability that an image is jittered
    grayscale_p: Fraction[float] = 0.0  # probability that an image is turned gray


@dataclass
class ModelConfig:
    name: str = "nin"  # backbone: nin | convnet13 | resnet18/34/50[_imagenet] | wrn28_2 | wrn28_10 | shake26_2x96d | vgg16_bn | alexnet[_imagenet]
    width: Positive[float] = 1.0  # channel multiplier (NIN 0.5 = 96 channels)
    blocks: Annotated[int, Range(3, 5)] = 4  # NIN blocks (3, 4 or 5)
    input: Literal["rgb", "L", "sobel"] = "rgb"  # what the backbone sees; saved with the run


@dataclass
class TrainConfig:
    epochs: Positive[int] = 200  # length of the run in epochs
    max_steps: Positive[int] | None = None  # length in optimizer steps; wins over epochs when set
    batch_size: Positive[int] = 128  # global batch size
    lr: Positive[float] = 0.1  # base learning rate
    optimizer: Literal["sgd", "adam", "adamw"] = "sgd"
    momentum: Momentum[float] = 0.9  # SGD momentum
    nesterov: bool = True  # SGD Nesterov momentum
    weight_decay: NonNegative[float] = 5e-4
    bn_weight_decay: bool = False  # also decay BatchNorm parameters and biases (RotNet, AET decay every parameter)
    betas: list[Momentum[float]] = field(default_factory=lambda: [0.9, 0.999])  # Adam/AdamW betas
    schedule: Literal["multistep", "cosine", "poly", "exponential", "constant"] = "multistep"  # poly: lr (1 - t/T)^poly_power (SESEMI); exponential: lr · decay_per_step^t (PixelCNN++, PIC)
    milestones: list[Milestone[float]] = field(default_factory=lambda: [0.3, 0.6, 0.8])  # multistep: fractions of the run
    gamma: Positive[float] = 0.2  # multistep: lr factor at each milestone
    poly_power: Positive[float] = 0.5  # poly: the decay's power (SESEMI's 0.5)
    decay_per_step: Fraction[float] = 0.99995  # exponential: lr factor per optimizer step (PIC: 0.99995)
    ema: Fraction[float] = 0.0  # Polyak averaging: decay of the weights' moving average, used to evaluate and sample (PIC: 0.9995; 0 = off)
    warmup: Momentum[float] = 0.0  # fraction of the run with linear lr warm-up from 0
    checkpoint_every: NonNegative[int] = 0  # write checkpoints/last.* every N steps (0 = at the end of every epoch)
    checkpoint_minutes: NonNegative[float] = 5.0  # also write checkpoints/last.* when this much time passed (0 = off)
    log_every: Positive[int] = 20  # steps between metrics.jsonl records
    labeled_batch_size: Positive[int] | None = None  # semi-supervised (SESEMI, S4L): a 2nd batch of this many labeled images per step for the labeled tasks (the labeled set repeats); None = one batch for every task
    tensorboard: bool = False  # also log to TensorBoard (runs/<name>/tensorboard)


@dataclass
class PipelineConfig:
    cluster: str | None = None  # chromaproxy pipeline: the clustering preset of its first stage, e.g. configs/iic-cifar10-quick.yaml
    cluster_overrides: list[str] = field(default_factory=list)  # key=value items for that preset, e.g. [iic.views=5]; its epochs are rescaled to the run's image count unless these set train.epochs
    baseline: bool = True  # also train the proxy task(s) without pseudo-labels, the report's reference
    eval_preset: str | None = None  # evaluation preset of the evaluate stage, e.g. configs/eval-sslpp-cifar10-quick.yaml
    protocols: list[str] = field(default_factory=lambda: ["knn", "conv"])  # protocols the evaluate stage runs


_BASE_FIELDS: list[tuple[str, Any, Any]] = [
    ("seed", NonNegative[int], field(default=0)),  # seeds weights, augmentation, data order and splits
    ("device", str, field(default="auto")),  # auto (cuda when present), cpu, cuda, cuda:1 …
    ("out", str | None, field(default=None)),  # run directory; default runs/<preset>-<time>
    ("resume", bool, field(default=False)),  # continue the run in `out` from checkpoints/last
    ("preset", str, field(default="")),  # name of the preset the run came from (set from the file name)
    ("seeds", list[NonNegative[int]], field(default_factory=list)),  # train once per seed into out/seed<k>/ and write out/seeds.json (mean ± std)
    ("colorizer", str | None, field(default=None)),  # Color-S4L: the colorization run whose recolorized images are flips.recolorized's 7th label
    ("graph", str | None, field(default=None)),  # transitive invariance: the `chromaproxy mine` folder whose edges are the training pairs
    ("tasks", list[str], field(default_factory=lambda: ["supervised"])),  # tasks trained together
    ("task_weights", list[NonNegative[float]], field(default_factory=lambda: [1.0])),  # loss weight per task
    ("task_weights_scope", Literal["loss", "backbone"], field(default="loss")),  # loss: L = Σ w·L_task; backbone: w scales only the gradient a task sends into the backbone, its head learns unweighted
    ("data", DataConfig, field(default_factory=DataConfig)),
    ("augment", AugmentConfig, field(default_factory=AugmentConfig)),
    ("model", ModelConfig, field(default_factory=ModelConfig)),
    ("train", TrainConfig, field(default_factory=TrainConfig)),
    ("pipeline", PipelineConfig, field(default_factory=PipelineConfig)),
    ("mine", MineOptions, field(default_factory=MineOptions)),
]

def _check_section_names() -> None:
    """A task or protocol named like a config section (or like each other) would shadow its keys."""
    names = [name for name, *_ in _BASE_FIELDS] + list(TASKS) + list(PROTOCOL_OPTIONS)
    clashes = sorted({name for name in names if names.count(name) > 1})
    if clashes:
        raise ImportError(f"task or protocol name {clashes[0]!r} is already a config section; rename it in its registry")


_check_section_names()
Config = dataclasses.make_dataclass(
    "Config",
    _BASE_FIELDS
    + [(name, task.Options, field(default_factory=task.Options)) for name, task in TASKS.items()]
    + [(name, options, field(default_factory=options)) for name, options in PROTOCOL_OPTIONS.items()],
)
Config.__doc__ = "The whole resolved configuration of a run: data, augment, model, train, tasks, evaluation."


def load_config(preset: str | Path | None, overrides: list[str] = ()) -> Any:
    """Resolve a preset plus ``key=value`` overrides into a validated ``Config``."""
    cfg = Config()
    if preset is not None:
        apply_preset(cfg, Path(preset))
    apply_overrides(cfg, overrides)
    return cfg


def apply_preset(cfg: Any, path: Path) -> None:
    """Apply a YAML preset (and its ``base:`` chain); ``preset`` names the file unless the file says."""
    mapping = _read_preset(path)
    _apply_mapping(cfg, mapping, source=str(path))
    if "preset" not in mapping:
        cfg.preset = path.stem


def apply_overrides(cfg: Any, overrides: list[str]) -> None:
    """Apply command-line ``key=value`` items, then the checks that involve several keys."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UserError(f"override '{item}' is not key=value (for example train.lr=0.05)")
        set_key(cfg, key.strip(), raw.strip(), source="the command line", raw=True)
    validate(cfg)


def config_from_dict(mapping: dict, source: str) -> Any:
    """Rebuild a ``Config`` from a saved ``config.yaml`` mapping (e.g. when resuming or evaluating)."""
    cfg = Config()
    _apply_mapping(cfg, mapping, source=source)
    validate(cfg)
    return cfg


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def save_config(cfg: Any, path: Path) -> None:
    path.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))


def all_keys(cfg: Any | None = None) -> list[str]:
    """Every settable dotted key, in declaration order."""
    cfg = cfg if cfg is not None else Config()
    keys = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            keys += [f"{f.name}.{sub}" for sub in all_keys(value)]
        else:
            keys.append(f.name)
    return keys


def set_key(cfg: Any, key: str, value: Any, source: str, raw: bool = False) -> None:
    """Set dotted ``key`` to ``value`` after checking it against the field's type.

    With ``raw=True`` the value is a command-line string: parsed as YAML (``[a,b]`` lists, numbers, true/
    false, null) unless the field holds text, where the string is kept as typed (so ``model.input=L``
    or a path like ``data.path=2024`` stays a string).
    """
    owner, name, hint = _locate(cfg, key)
    if raw:
        value = _parse_raw(value, hint)
    setattr(owner, name, _coerce(value, hint, key, source))


def validate(cfg: Any) -> None:
    """Checks that involve several keys."""
    unknown = [t for t in cfg.tasks if t not in TASKS]
    if unknown:
        raise UserError(f"unknown task '{unknown[0]}' in tasks; available: {', '.join(TASKS)}")
    if not cfg.tasks:
        raise UserError("tasks is empty; name at least one, e.g. tasks=[supervised]")
    check_backbone_name(cfg.model.name)
    for name in cfg.tasks:
        if cfg.model.input not in TASKS[name].inputs:
            accepted = ", ".join(f"model.input={kind}" for kind in TASKS[name].inputs)
            raise UserError(f"task {name} cannot train on model.input={cfg.model.input}; set {accepted}")
    if len(cfg.task_weights) != len(cfg.tasks):
        raise UserError(
            f"task_weights has {len(cfg.task_weights)} values for {len(cfg.tasks)} tasks; give one weight per task"
        )
    if len(cfg.augment.color_jitter) != 4:
        raise UserError("augment.color_jitter needs 4 values: [brightness, contrast, saturation, hue]")
    low_high = cfg.augment.crop_scale
    if len(low_high) != 2 or not 0 < low_high[0] <= low_high[1]:
        raise UserError(f"augment.crop_scale={low_high} needs 2 area shares 0 < low <= high <= 1, e.g. [0.3, 1.0] ([1, 1] is off)")
    _check_colorizer(cfg)
    _check_graph(cfg)
    if cfg.data.name == "folder" and not cfg.data.path:
        raise UserError("data.name=folder needs data.path=DIR (a folder of images)")


def _check_colorizer(cfg: Any) -> None:
    """Color-S4L's two keys go together: ``flips.recolorized`` asks for the 7th label, ``colorizer`` makes it."""
    wants = "flips" in cfg.tasks and cfg.flips.recolorized
    if wants and cfg.colorizer is None:
        raise UserError(
            "flips.recolorized=true (Color-S4L) needs colorizer=RUN, a colorization run such as runs/color-quick "
            "(train one with: chromaproxy pretrain configs/colorization-cifar10-quick.yaml out=runs/color-quick)"
        )
    if cfg.colorizer is not None and not wants:
        raise UserError(f"colorizer={cfg.colorizer} only feeds the flips task's 7th label: set tasks with flips and "
                        "flips.recolorized=true (configs/s4l-color-cifar10-1000-quick.yaml), or drop colorizer")


def _check_graph(cfg: Any) -> None:
    """A graph feeds the transitive task only (which asks for one when it loads its data: ``chromaproxy
    mine`` reads the same preset before any graph exists)."""
    if cfg.graph is not None and "transitive" not in cfg.tasks:
        raise UserError(f"graph={cfg.graph} only feeds the transitive task: set tasks=[transitive], or drop graph")


def _read_preset(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    if not path.is_file():
        raise UserError(f"config file not found: {path} (presets live in configs/, e.g. configs/supervised-cifar10-quick.yaml)")
    try:
        mapping = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise UserError(f"{path}{where} is not valid YAML: {getattr(err, 'problem', err)}") from None
    if not isinstance(mapping, dict):
        raise UserError(f"{path} must be a mapping of config keys (e.g. 'train:' with 'lr: 0.1')")
    base = mapping.pop("base", None)
    if base is None:
        return mapping
    base_path = (path.parent / base).resolve()
    if base_path in seen:
        raise UserError(f"{path} names base {base}, which leads back to itself")
    return _merge(_read_preset(base_path, seen + (base_path,)), mapping)


def _merge(base: dict, top: dict) -> dict:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _apply_mapping(cfg: Any, mapping: dict, source: str, prefix: str = "") -> None:
    for key, value in mapping.items():
        dotted = f"{prefix}{key}"
        target = _locate(cfg, dotted)
        if isinstance(value, dict) and dataclasses.is_dataclass(getattr(target[0], target[1])):
            _apply_mapping(cfg, value, source, prefix=f"{dotted}.")
        else:
            set_key(cfg, dotted, value, source)


def _locate(cfg: Any, key: str) -> tuple[Any, str, Any]:
    """Find the dataclass holding dotted ``key``; an unknown key names the closest valid one."""
    owner = cfg
    parts = key.split(".")
    for depth, part in enumerate(parts):
        hints = typing.get_type_hints(type(owner), include_extras=True)
        if part not in hints:
            raise UserError(_unknown_key_message(key, cfg))
        if depth == len(parts) - 1:
            return owner, part, hints[part]
        owner = getattr(owner, part)
        if not dataclasses.is_dataclass(owner):
            raise UserError(_unknown_key_message(key, cfg))
    raise UserError(_unknown_key_message(key, cfg))


def _unknown_key_message(key: str, cfg: Any) -> str:
    keys = all_keys(cfg)
    sections = sorted({k.split(".")[0] for k in keys if "." in k})
    close = difflib.get_close_matches(key, keys + sections, n=1, cutoff=0.5)
    hint = f"did you mean '{close[0]}'?" if close else "run 'chromaproxy config show' to list every key"
    return f"unknown config key '{key}': {hint}"


def _parse_raw(raw: str, hint: Any) -> Any:
    if _accepts_text(hint) and raw not in ("null", "None", "~"):
        return raw
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def _accepts_text(hint: Any) -> bool:
    return hint is str or (_is_union(hint) and str in typing.get_args(hint))


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _coerce(value: Any, hint: Any, key: str, source: str) -> Any:
    """Return ``value`` converted to ``hint`` or raise a one-line error naming key, value and type (or range)."""
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        value = _coerce(value, typing.get_args(hint)[0], key, source)
        declared = bounds(hint)
        if declared is not None and not declared.admits(value):
            integer = isinstance(value, int)
            raise OutOfRange(f"{key}={value!r} from {source} is out of range: it must be {declared.describe(integer)}")
        return value
    if _is_union(hint):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, key, source)
            except OutOfRange:
                raise
            except UserError:
                continue
        raise _type_error(key, value, hint, source)
    if origin is Literal:
        if value in typing.get_args(hint):
            return value
        choices = ", ".join(str(c) for c in typing.get_args(hint))
        raise UserError(f"{key}={value!r} from {source} is not allowed; choose one of: {choices}")
    if origin is list:
        items = value if isinstance(value, (list, tuple)) else [value]
        (item_hint,) = typing.get_args(hint)
        return [_coerce(v, item_hint, f"{key}[{i}]", source) for i, v in enumerate(items)]
    if dataclasses.is_dataclass(hint):
        raise UserError(f"{key} is a section; set its keys, e.g. {key}.{dataclasses.fields(hint)[0].name}=...")
    return _coerce_scalar(value, hint, key, source)


class OutOfRange(UserError):
    """A number of the right type outside its key's declared range."""


_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _coerce_scalar(value: Any, hint: Any, key: str, source: str) -> Any:
    if hint is bool and isinstance(value, bool):
        return value
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
        return float(value)  # YAML 1.1 reads 5e-4 (no dot) as a string
    if hint is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise _type_error(key, value, hint, source)


def _type_error(key: str, value: Any, hint: Any, source: str) -> UserError:
    name = getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
    return UserError(f"{key}={value!r} from {source} is not a valid {name}")
