"""Where training reports go: metrics.jsonl (always), TensorBoard (optional), a rich progress bar."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from chromaproxy.errors import UserError


class MetricsLog:
    """Appends one JSON record per line; on resume drops records the restored checkpoint had not seen, on a
    fresh start every old record.

    ``enabled=False`` (every DDP rank but 0) writes nothing."""

    def __init__(self, run: Path, resume_step: int | None, tensorboard: bool, enabled: bool = True) -> None:
        self.path = run / "metrics.jsonl"
        self.enabled = enabled
        self.writer = _tensorboard_writer(run / "tensorboard") if tensorboard and enabled else None
        if enabled and self.path.exists():  # a fresh start in a reused folder keeps nothing of the run that failed
            kept = [line for line in self.path.read_text().splitlines()
                    if resume_step is not None and json.loads(line)["step"] <= resume_step]
            self.path.write_text("".join(line + "\n" for line in kept))

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.writer is not None:
            prefix = record.get("split", "train")
            for key, value in record.items():
                if isinstance(value, float):
                    self.writer.add_scalar(f"{prefix}/{key}", value, record["step"])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _tensorboard_writer(path: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UserError("train.tensorboard=true needs the tensorboard package: pip install tensorboard") from None
    return SummaryWriter(str(path))


class TrainProgress:
    """A live bar with loss, img/s and ETA; plain epoch lines where the output is not a terminal.

    ``enabled=False`` (every DDP rank but 0) shows nothing."""

    def __init__(self, console: Console, total_steps: int, start_step: int, enabled: bool = True) -> None:
        self.enabled = enabled
        self.console = console
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[speed]} img/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
            disable=not enabled,
        )
        self.bar = self.progress.add_task("train", total=total_steps, completed=start_step, loss="-", speed="-")

    def __enter__(self) -> "TrainProgress":
        self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.stop()

    def advance(self, step: int, epoch: int, epochs: int) -> None:
        self.progress.update(self.bar, completed=step, description=f"epoch {epoch + 1}/{epochs}")

    def show(self, loss: float, images_per_second: float) -> None:
        self.progress.update(self.bar, loss=f"{loss:.4f}", speed=f"{images_per_second:.0f}")

    def line(self, text: str) -> None:
        if self.enabled:
            self.progress.console.print(text)


class Throughput:
    """Images per second between two calls of ``rate``."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.images = 0

    def add(self, images: int) -> None:
        self.images += images

    def rate(self) -> float:
        now = time.perf_counter()
        rate = self.images / max(now - self.start, 1e-9)
        self.start, self.images = now, 0
        return rate
