"""Colorize real photographs of any size and mode with a colorization run, keeping their full resolution.

Test-time recipe of Zhang et al. (2016): the network sees the lightness resized to S x S (the size it was
trained on unless told otherwise), predicts ab there, ab is upsampled bilinearly to the original size and
joined with the ORIGINAL full-resolution L. Detail therefore comes from the photo, only colour from the
network, and the output's lightness is the input's.

Only lightness reaches the network, whatever the input (colour, gray, palette, 16-bit): the resized image
is reduced to its L and rebuilt as gray RGB before ``network.input``. Images of one batch share the
S x S network pass; upsampling and joining are per image, since their sizes differ.

A PIC run (``tasks=[pic]``) colours the same way, its chroma drawn by the autoregressive model: ``samples``
draws per photo (``<name>-1.png`` …, batched: the photo repeated K times in one pass), ``decode`` one of
``sample`` (temperature T), ``component-mode`` or ``mode``; ``seed`` fixes the draws.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from chromaproxy.color import join_lab, lab_to_rgb, rgb_to_lab, split_lab
from chromaproxy.data.folder import IMAGE_EXTENSIONS, images_under, to_rgb
from chromaproxy.errors import UserError
from chromaproxy.tasks import TASKS

COLOURING_TASKS = ("colorization", "pic")  # the tasks whose heads colour a photo (their ``decodes``)
TEMPERATURE_DECODES = ("annealed", "sample", "component-mode")  # the decodes a temperature changes
CHECKPOINTS = ("last", "best")
BATCH_PIXELS = 1 << 16  # network pixels per batch: 64 images at 32 x 32, one at 256 x 256
FULL_PIXEL_BUDGET = 1 << 25  # full-resolution pixels held at once (about 100 MB as uint8)
_READ_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)

Report = Callable[[Path, str], None]  # called with (input, reason) for each input that fails
Loaded = list[tuple[Path, Path, torch.Tensor]]  # one batch of (source, target, rgb (3, H, W) uint8)


# ------------------------------------------------------------------ one image
def lab_lightness(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) sRGB in [0, 1] → L (B, 1, H, W) in [0, 100]."""
    return split_lab(rgb_to_lab(rgb))[0]


def shrink(rgb: torch.Tensor, size: int) -> torch.Tensor:
    """(3, H, W) → (3, size, size), antialiased so that large photos do not alias when shrunk."""
    small = F.interpolate(rgb[None], size=(size, size), mode="bicubic", antialias=True, align_corners=False)
    return small[0].clamp(0, 1)  # bicubic overshoots a little


@torch.inference_mode()
def predict_small_ab(
    network, task, rgb: torch.Tensor, decode: str, temperature: float | None, chunk: int = 4096,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """ab (B, 2, S, S) predicted from the lightness of ``rgb`` (B, 3, S, S) only: the one L → features → ab
    path, shared by ``colorize`` and the colorization protocol; ``chunk`` bounds the head's locations per
    call; ``generator`` drives a sampling head's draws (PIC)."""
    L = lab_lightness(rgb)  # (B, 1, S, S)
    gray = lab_to_rgb(join_lab(L, torch.zeros_like(L).expand(-1, 2, -1, -1)))  # (B, 3, S, S), a = b = 0
    features = network.backbone.forward_features(network.input(gray), task.taps)
    sampling = {} if generator is None else {"generator": generator}
    return task.predict_ab(features, L, decode=decode, temperature=temperature, chunk=chunk, **sampling)


@torch.inference_mode()
def recolor(rgb: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """The full-resolution image (3, H, W) with its own L and the small ab (2, S, S) upsampled bilinearly."""
    full_ab = F.interpolate(ab[None], size=rgb.shape[-2:], mode="bilinear", align_corners=False)  # (1, 2, H, W)
    return lab_to_rgb(join_lab(lab_lightness(rgb[None]), full_ab))[0]  # (3, H, W)


def colorize_image(
    network, task, rgb: torch.Tensor, size: int, decode: str = "annealed", temperature: float | None = None
) -> torch.Tensor:
    """(3, H, W) RGB in [0, 1] → colorized (3, H, W); ``network`` must be on ``rgb``'s device."""
    ab = predict_small_ab(network, task, shrink(rgb, size)[None], decode, temperature)[0]  # (2, S, S)
    return recolor(rgb, ab)


def read_rgb(path: Path) -> torch.Tensor:
    """A file as upright 8-bit RGB (3, H, W) uint8, whatever its mode (alpha on white, 16-bit scaled)."""
    with Image.open(path) as image:
        rgb = to_rgb(ImageOps.exif_transpose(image))
    return torch.from_numpy(np.array(rgb)).permute(2, 0, 1)  # (3, H, W)


def save_png(rgb: torch.Tensor, target: Path) -> None:
    array = rgb.mul(255).round().clamp(0, 255).byte().permute(1, 2, 0).cpu().numpy()  # (H, W, 3)
    target.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(target, format="PNG")


# ------------------------------------------------------------------ inputs and outputs
def find_images(inputs: Sequence[str | Path]) -> list[tuple[Path, Path]]:
    """(file, output name) for every input: files as given, folders searched recursively, glob patterns
    expanded (when the shell did not). An input that matches nothing is a mistake, not an empty result."""
    found = []
    for spec in map(str, inputs):
        matches = _expand(spec)
        if not matches:
            raise UserError(f"{spec} matches no image file or folder of images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
        found.extend(matches)
    if not found:
        raise UserError("no input images given: pass files, folders or patterns such as 'photos/*.jpg'")
    return found


def _expand(spec: str) -> list[tuple[Path, Path]]:
    path = Path(spec).expanduser()
    if path.is_dir():
        return [(f, f.relative_to(path).with_suffix(".png")) for f in images_under(path)]
    if path.is_file():
        return [(path, Path(path.stem + ".png"))]
    if any(char in spec for char in "*?["):
        return [m for match in sorted(glob.glob(os.path.expanduser(spec), recursive=True)) for m in _expand(match)]
    return []


def plan_outputs(found: list[tuple[Path, Path]], out: Path) -> list[tuple[Path, Path]]:
    """(source, target) pairs: a file listed twice is colorized once, and a name already taken (by another
    input's output or by an input itself, compared case-insensitively) gets a -2, -3 … suffix, so no output
    silently replaces another or an input."""
    sources = {_key(source) for source, _ in found}
    taken, seen, plan = set(sources), set(), []
    for source, name in found:
        if _key(source) in seen:
            continue
        seen.add(_key(source))
        target = _free(out / name, taken)
        taken.add(_key(target))
        plan.append((source, target))
    return plan


def _key(path: Path) -> str:
    return str(path.resolve()).lower()


def _free(target: Path, taken: set[str]) -> Path:
    candidate, number = target, 1
    while _key(candidate) in taken:
        number += 1
        candidate = target.with_name(f"{target.stem}-{number}{target.suffix}")
    return candidate


# ------------------------------------------------------------------ the command
def check_options(decode: str | None, temperature: float | None, checkpoint: str, size: int | None, samples: int = 1) -> None:
    """Reject impossible options before any model is loaded."""
    known = sorted({d for name in COLOURING_TASKS for d in TASKS[name].decodes})
    if decode is not None and decode not in known:
        raise UserError(f"--decode {decode} is unknown; choose one of: {', '.join(known)}")
    if temperature is not None and decode is not None and decode not in TEMPERATURE_DECODES:
        raise UserError(f"--temperature does not change --decode {decode}; it applies to {', '.join(TEMPERATURE_DECODES)}")
    if temperature is not None and not temperature > 0:
        raise UserError(f"--temperature {temperature} must be positive (Zhang et al.: 0.38; 1 = plain mean)")
    if checkpoint not in CHECKPOINTS:
        raise UserError(f"--checkpoint {checkpoint} is unknown; choose last or best")
    if size is not None and size < 1:
        raise UserError(f"--size {size} must be a positive number of pixels (default: the run's training size)")
    if samples < 1:
        raise UserError(f"--samples {samples} must be at least 1")


def colour_model(network, run: Path, decode: str | None, samples: int) -> tuple[object, str]:
    """The run's colouring task (colorization or pic) and the decode to use, checked against each other."""
    kind = next((name for name in COLOURING_TASKS if name in network.tasks), None)
    if kind is None:
        raise UserError(f"{run} was not trained with the colorization task nor with pic (its tasks: "
                        f"{', '.join(network.tasks)}); pass a run of configs/colorization-cifar10.yaml or configs/pic-cifar10.yaml")
    decodes = network.tasks[kind].decodes
    decode = decode or decodes[0]
    if decode not in decodes:
        raise UserError(f"--decode {decode} does not apply to a {kind} run; choose one of: {', '.join(decodes)}")
    if samples > 1 and (kind != "pic" or decode == "mode"):
        why = "a feed-forward colorization run" if kind != "pic" else "--decode mode"
        raise UserError(f"--samples {samples} needs draws that differ, and {why} gives one answer; "
                        "use a PIC run with --decode sample or component-mode")
    return network.tasks[kind], decode


def colorization_task(network, run: Path):
    if "colorization" not in network.tasks:
        raise UserError(
            f"{run} was not trained with the colorization task (its tasks: {', '.join(network.tasks)}); "
            "pass a run of configs/colorization-cifar10.yaml"
        )
    return network.tasks["colorization"]


def colorize_paths(
    run: Path, inputs: Sequence[str | Path], out: Path, size: int | None = None, decode: str | None = None,
    temperature: float | None = None, checkpoint: str = "last", console: Console | None = None,
    samples: int = 1, seed: int = 0,
) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Colorize every input into ``out`` as PNG (``samples`` PNGs each from a PIC run); returns (written
    files, [(input, reason)] that failed). An unreadable file is reported on ``console`` as
    ``error: <path>: <reason>`` and the rest go on."""
    from chromaproxy.device import resolve_device
    from chromaproxy.network import load_network

    check_options(decode, temperature, checkpoint, size, samples)
    if Path(out).exists() and not Path(out).is_dir():
        raise UserError(f"--out {out} is a file; give a folder for the colorized images")
    plan = plan_outputs(find_images(inputs), Path(out))
    cfg, network = load_network(Path(run), checkpoint)
    task, decode = colour_model(network, run, decode, samples)
    device = resolve_device(cfg.device)
    network.to(device)
    size = size or cfg.data.image_size
    draws = Draws(decode, temperature, samples, torch.Generator(device).manual_seed(seed))
    console = console or Console(stderr=True)
    done, failed = [], []
    with _bar(console, enabled=len(plan) * samples > 1) as bar:
        progress = bar.add_task("colorizing", total=len(plan) * samples)

        def report(source: Path, reason: str) -> None:
            failed.append((source, reason))
            console.print(f"error: {source}: {reason}", markup=False, highlight=False, soft_wrap=True)
            bar.advance(progress, samples)

        for batch in _loaded_batches(plan, max(1, BATCH_PIXELS // size**2 // samples), report):
            done.extend(_colorize_batch(network, task, batch, size, draws, device, report))
            bar.update(progress, completed=len(done) + len(failed) * samples)
    return done, failed


def _loaded_batches(plan: list[tuple[Path, Path]], per_batch: int, report: Report) -> Iterator[Loaded]:
    """Decoded (source, target, rgb uint8) batches of at most ``per_batch`` images and about
    ``FULL_PIXEL_BUDGET`` full-resolution pixels; unreadable files are reported and left out."""
    batch, pixels = [], 0
    for source, target in plan:
        try:
            rgb = read_rgb(source)
        except _READ_ERRORS as err:
            report(source, f"{type(err).__name__}: {err}")
            continue
        batch.append((source, target, rgb))
        pixels += rgb[0].numel()
        if len(batch) == per_batch or pixels >= FULL_PIXEL_BUDGET:
            yield batch
            batch, pixels = [], 0
    if batch:
        yield batch


@dataclass(frozen=True)
class Draws:
    """How ab is read from the head: the decode, its temperature, and for PIC the draws per photo."""

    decode: str
    temperature: float | None
    samples: int
    generator: torch.Generator


def _colorize_batch(network, task, batch: Loaded, size: int, draws: Draws, device: torch.device, report: Report) -> list[Path]:
    """One network pass for the whole batch at S x S (each image ``samples`` times), then per output:
    upsample, join, save."""
    small = torch.stack([shrink(_unit(rgb, device), size) for _, _, rgb in batch])  # (B, 3, S, S)
    small = small.repeat_interleave(draws.samples, dim=0)  # (B·K, 3, S, S)
    generator = draws.generator if task.name == "pic" else None
    small_ab = predict_small_ab(network, task, small, draws.decode, draws.temperature, generator=generator)
    written = []
    for index, ab in enumerate(small_ab):  # (2, S, S)
        source, target, rgb = batch[index // draws.samples]
        target = _numbered(target, index % draws.samples, draws.samples)
        try:
            save_png(recolor(_unit(rgb, device), ab), target)
        except OSError as err:
            report(source, f"cannot write {target}: {err}")
            continue
        written.append(target)
    return written


def _numbered(target: Path, index: int, samples: int) -> Path:
    """``photo.png`` for a single output, ``photo-1.png`` … ``photo-K.png`` for K samples."""
    return target if samples == 1 else target.with_name(f"{target.stem}-{index + 1}{target.suffix}")


def _unit(rgb: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 (3, H, W) → float in [0, 1] on ``device``, made when needed so a batch stays uint8 in memory."""
    return rgb.to(device).float() / 255


def _bar(console: Console, enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=console, disable=not enabled,
    )
