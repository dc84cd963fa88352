"""``chromaproxy colorize`` end to end on a tiny colorization run: real files of every mode and size, the
original lightness kept at full resolution, bad files reported without stopping the rest."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from chromaproxy.color import rgb_to_lab
from conftest import REPO, data_root

SMALL = ["data.limit=256", "model.blocks=3", "model.width=0.125", "train.batch_size=32", "train.max_steps=3",
         "eval.test_limit=100"]
COLOR = ["colorization.points=16", "colorization.hidden=32", "colorization.prior_images=256"]


def _train(preset: str, out: Path, extra: list[str]) -> Path:
    from chromaproxy.config import load_config
    from chromaproxy.engine.run_dir import open_run_dir
    from chromaproxy.engine.trainer import Trainer

    root = data_root()
    if not (root / "cifar10" / "data_batch_1").is_file():
        pytest.skip(f"CIFAR-10 not found under {root} (set CHROMAPROXY_DATA)")
    cfg = load_config(REPO / "configs" / preset, [f"data.root={root}", *SMALL, *extra, f"out={out}", "device=cpu"])
    Trainer(cfg, open_run_dir(cfg)).fit()
    return out


@pytest.fixture(scope="module")
def color_run(tmp_path_factory) -> Path:
    return _train("colorization-cifar10.yaml", tmp_path_factory.mktemp("runs") / "color", COLOR)


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chromaproxy", "colorize", *map(str, args)],
                          capture_output=True, text=True, env=dict(os.environ))


def _gradient(width: int, height: int) -> np.ndarray:
    """(H, W, 3) uint8 with varying colour and lightness, so lightness errors would show."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), (x + y) % 256], -1).astype(np.uint8)


def _write_inputs(folder: Path) -> dict[str, tuple[int, int]]:
    """Files of many modes; returns name → expected (width, height) of the output (after EXIF rotation)."""
    folder.mkdir()
    rgb = Image.fromarray(_gradient(70, 45))
    rgb.convert("L").save(folder / "gray.png")
    rgb.save(folder / "wide.jpg", quality=95)
    rgba = rgb.convert("RGBA")
    rgba.putalpha(200)
    rgba.save(folder / "alpha.png")
    rgb.convert("P", palette=Image.Palette.ADAPTIVE).save(folder / "palette.png")
    Image.fromarray((_gradient(40, 30)[..., 0].astype(np.uint16) * 257)).save(folder / "deep.png")  # I;16
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    Image.fromarray(_gradient(60, 20)).save(folder / "rotated.jpg", exif=exif, quality=95)
    return {"gray": (70, 45), "wide": (70, 45), "alpha": (70, 45), "palette": (70, 45), "deep": (40, 30),
            "rotated": (20, 60)}


def _expected_lightness(path: Path) -> torch.Tensor:
    from PIL import ImageOps

    from chromaproxy.data.folder import to_rgb

    with Image.open(path) as image:
        rgb = np.array(to_rgb(ImageOps.exif_transpose(image)))
    return _L(rgb)


def _L(rgb: np.ndarray) -> torch.Tensor:
    return rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255)[0, 0]  # (H, W)


def test_colorizes_every_mode_at_full_resolution_and_reports_bad_files(color_run, tmp_path):
    sizes = _write_inputs(tmp_path / "in")
    (tmp_path / "in" / "corrupt.jpg").write_bytes(np.random.default_rng(0).bytes(500))
    files = sorted((tmp_path / "in").iterdir())
    result = _cli(color_run, *files, "--out", tmp_path / "out")
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "corrupt.jpg" in errors[0] and "Traceback" not in result.stderr
    assert "colorized 6, failed 1" in result.stdout
    for name, size in sizes.items():
        source = next(f for f in files if f.stem == name)
        with Image.open(tmp_path / "out" / f"{name}.png") as output:
            assert output.mode == "RGB" and output.size == size, name
            colour = np.array(output)
        assert (_L(colour) - _expected_lightness(source)).abs().mean() < 2, name


def test_folder_glob_decode_mode_and_name_collisions(color_run, tmp_path):
    for sub in ("a", "b", ".hidden"):
        (tmp_path / "in" / sub).mkdir(parents=True)
        Image.fromarray(_gradient(33, 21)).save(tmp_path / "in" / sub / "same.png")
    Image.fromarray(_gradient(33, 21)).save(tmp_path / "in" / "a" / "same.jpg")
    result = _cli(color_run, tmp_path / "in", "--out", tmp_path / "folder", "--decode", "mode", "--size", "16")
    assert result.returncode == 0, result.stderr
    written = sorted(p.relative_to(tmp_path / "folder").as_posix() for p in (tmp_path / "folder").rglob("*.png"))
    assert written == ["a/same-2.png", "a/same.png", "b/same.png"]
    result = _cli(color_run, f"{tmp_path}/in/*/same.png", "--out", tmp_path / "glob")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "glob").iterdir()) == ["same-2.png", "same.png"]


def test_user_mistakes_are_one_line(color_run, tmp_path):
    Image.fromarray(_gradient(10, 10)).save(tmp_path / "x.png")
    for args, message in (
        ([tmp_path / "x.png", "--temperature", "0"], "must be positive"),
        ([tmp_path / "nothing-*.png"], "matches no image"),
        ([tmp_path / "x.png", "--decode", "median"], "--decode median is unknown"),
    ):
        result = _cli(color_run, *args, "--out", tmp_path / "out")
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_run_without_colorization_is_refused(tmp_path):
    run = _train("supervised-cifar10-quick.yaml", tmp_path / "sup", [])
    Image.fromarray(_gradient(10, 10)).save(tmp_path / "x.png")
    result = _cli(run, tmp_path / "x.png", "--out", tmp_path / "out")
    assert result.returncode == 2
    assert "not trained with the colorization task" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
