"""Shared test fixtures: where the real datasets are, and a tiny config for fast end-to-end runs."""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def load_benchmark(name: str):
    """benchmarks/NAME.py as a module, registered under NAME so a benchmark importing its sibling (``import
    throughput``) finds the loaded one; benchmarks/ is a folder of scripts, not a package."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@contextlib.contextmanager
def single_thread():
    """One intra-op thread while tiny models run: splitting small convs across threads costs more than it
    saves, and on busy shared cores the threads' hand-offs stall (a file of them took minutes on 2 threads)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def one_thread():
    with single_thread():
        yield


def data_root() -> Path:
    """$CHROMAPROXY_DATA if set, else ../shared/data beside the checkout."""
    return Path(os.environ.get("CHROMAPROXY_DATA", REPO.parent / "shared" / "data")).resolve()


@pytest.fixture
def cifar_root() -> Path:
    root = data_root()
    if not (root / "cifar10" / "data_batch_1").is_file():
        pytest.skip(f"CIFAR-10 not found under {root} (set CHROMAPROXY_DATA)")
    return root


def preset_overrides(preset: Path) -> list[str]:
    """What a user must add to load a shipped preset: a folder for the folder presets (the others ignore
    it) and a colorization run for the Color-S4L ones (a path is enough to load and build the network)."""
    return ["data.path=photos"] + (["colorizer=runs/color-quick"] if preset.stem.startswith("s4l-") else [])


def tiny_graph() -> Path:
    """A 16-patch graph in the layout ``chromaproxy mine`` writes (random pixels, every edge kind), written
    once per test session for tests that train every task in the engine, and removed when it ends."""
    from safetensors.torch import save_file

    from chromaproxy.video.graph import GRAPH, transitive_pairs

    folder = Path(tempfile.gettempdir()) / f"chromaproxy-test-graph-{os.getpid()}"
    folder.mkdir(exist_ok=True)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    generator = torch.Generator().manual_seed(0)
    inter = torch.tensor([[0, 2], [4, 6], [8, 10], [12, 14]])
    save_file({"patches": torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8, generator=generator),
               "parent": torch.arange(16) // 4, "intra": torch.arange(16).view(8, 2), "inter": inter,
               "transitive": transitive_pairs(inter)}, str(folder / GRAPH))
    return folder


# Options a task cannot default, for tests that run every registered task: pseudolabel needs a source,
# transitive a graph, the image models the identity backbone (and, for speed, a few filters), sec a mask
# dataset (and a one-epoch cue network).
TASK_REQUIRED = {
    "pseudolabel": {"pseudolabel.labels": "random"},
    "transitive": {"graph": str(tiny_graph())},
    "pixelcnn": {"model.name": "pixels", "pixelcnn.filters": 8, "pixelcnn.blocks": 1, "pixelcnn.scales": 3},
    "grayscale_pixelcnn": {"model.name": "pixels", "grayscale_pixelcnn.gray_filters": 8, "grayscale_pixelcnn.gray_blocks": 1,
                           "grayscale_pixelcnn.filters": 8, "grayscale_pixelcnn.blocks": 1, "grayscale_pixelcnn.embedding_blocks": 1},
    "pyramid_pixelcnn": {"model.name": "pixels", "pyramid_pixelcnn.base_filters": 8, "pyramid_pixelcnn.base_blocks": 1,
                         "pyramid_pixelcnn.filters": 8, "pyramid_pixelcnn.blocks": 1, "pyramid_pixelcnn.embedding_blocks": 2,
                         "pyramid_pixelcnn.embedding_down": "[]", "pyramid_pixelcnn.embedding_up": "[1]"},
    "sec": {"data.name": "pets3", "augment.crop_padding": 0, "sec.cue_epochs": 1},
}


def tiny_overrides(root: Path, out: Path, **extra: object) -> list[str]:
    """A run that takes a few seconds on a CPU: 256 CIFAR images, NIN-3 at width 0.125."""
    settings = {
        "data.root": str(root),
        "data.limit": 256,
        "model.blocks": 3,
        "model.width": 0.125,
        "train.batch_size": 32,
        "train.epochs": 2,
        "eval.test_limit": 200,
        "out": str(out),
        **extra,
    }
    return [f"{k}={v}" for k, v in settings.items()]
