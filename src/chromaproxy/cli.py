"""The ``chromaproxy`` command line: one sub-command per user job.

User mistakes (``UserError``) are printed as one red line and exit with status 2; a diverged run exits
with status 3; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
import yaml
from rich.console import Console
from rich.table import Table

from chromaproxy import __version__
from chromaproxy.errors import UserError

console = Console()
err_console = Console(stderr=True)

app = typer.Typer(
    help="Learn visual representations from unlabeled images through proxy tasks, and measure them layer by layer.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
data_app = typer.Typer(help="Inspect datasets: where they are, their splits and whether they are intact.", no_args_is_help=True)
config_app = typer.Typer(help="Show resolved configurations and every settable key.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(config_app, name="config")

OVERRIDES_HELP = "Config overrides as key=value, e.g. train.lr=0.05 data.limit=5000 tasks=[supervised]."


def _version(value: bool) -> None:
    if value:
        console.print(f"chromaproxy {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """chromaproxy: pretrain with proxy tasks (colorization first), evaluate every layer."""


@app.command(
    epilog="Example:  chromaproxy pretrain configs/supervised-cifar10-quick.yaml train.epochs=2 out=runs/try\n\n"
    "Resume a stopped run:  chromaproxy pretrain runs/try/config.yaml resume=true",
)
def pretrain(
    config: Path = typer.Argument(..., help="A YAML preset from configs/ (or a run's config.yaml to resume it)."),
    overrides: Optional[list[str]] = typer.Argument(None, help=OVERRIDES_HELP, show_default=False),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved config and exit without training."),
) -> None:
    """Train a backbone with the tasks the config lists; writes a run directory (config, checkpoints, metrics)."""
    from chromaproxy.config import load_config, to_dict
    from chromaproxy.engine.run_dir import open_run_dir
    from chromaproxy.engine.trainer import Trainer

    cfg = load_config(config, overrides or [])
    if dry_run:
        console.print(yaml.safe_dump(to_dict(cfg), sort_keys=False), end="")
        return
    run = open_run_dir(cfg)
    err_console.print(f"run directory: [bold]{run}[/bold]")
    trainer = Trainer(cfg, run, err_console)
    try:
        test = trainer.fit()
    except KeyboardInterrupt:
        raise UserError(f"interrupted; continue with: chromaproxy pretrain {run}/config.yaml resume=true") from None
    if test:
        console.print("test  " + "  ".join(f"{k} {v:.4f}" for k, v in test.items()))
    console.print(f"done: {run}")


@data_app.command(
    "info",
    epilog="Examples:  chromaproxy data info cifar10\n\n  chromaproxy data info folder --path ~/photos --image-size 64",
)
def data_info(
    name: str = typer.Argument(..., help="Dataset source: cifar10 or folder."),
    root: Optional[str] = typer.Option(None, help="Parent folder of the standard datasets (default: $CHROMAPROXY_DATA, else ~/.cache/chromaproxy)."),
    path: Optional[str] = typer.Option(None, help="The image folder, for the folder source."),
    image_size: int = typer.Option(32, help="Side the folder source resizes images to."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip (and count) unreadable files instead of stopping."),
    download: bool = typer.Option(True, help="Download a missing standard dataset when the network allows."),
) -> None:
    """Where a dataset is, its split sizes and per-class counts, and an integrity verdict."""
    from chromaproxy.data.sources import inspect, load_source

    splits = load_source(name, root=root, path=path, image_size=image_size, skip_bad=skip_bad, download=download)
    report = inspect(splits)
    console.print(f"[bold]{report.name}[/bold] at {report.location}")
    console.print(_class_table(report))
    for check, passed, detail in report.checks:
        mark = "[green]ok[/green]  " if passed else "[red]FAIL[/red]"
        console.print(f"  {mark} {check}: {detail}")
    console.print(f"integrity: {report.verdict}")
    if not report.verdict.startswith("ok"):
        raise typer.Exit(1)


def _class_table(report) -> Table:
    table = Table("class", *report.splits, title="images per class")
    names = report.class_names or ["(unlabeled)"]
    for row, name in enumerate(names):
        table.add_row(name, *(str(report.per_class[s][row]) if report.per_class.get(s) else "-" for s in report.splits))
    table.add_row("[bold]total[/bold]", *(str(n) for n in report.splits.values()))
    return table


@config_app.command("show", epilog="Example:  chromaproxy config show configs/supervised-cifar10-quick.yaml train.lr=0.05")
def config_show(
    config: Optional[Path] = typer.Argument(None, help="A YAML preset; without it, the defaults."),
    overrides: Optional[list[str]] = typer.Argument(None, help=OVERRIDES_HELP, show_default=False),
) -> None:
    """Print the fully resolved config (every key with its value) after the preset and overrides."""
    from chromaproxy.config import load_config, to_dict

    overrides = overrides or []
    if config is not None and "=" in config.name and not config.exists():
        config, overrides = None, [str(config), *overrides]
    console.print(yaml.safe_dump(to_dict(load_config(config, overrides)), sort_keys=False), end="")


def main() -> None:
    """Entry point: runs the app and turns user errors into one line without a traceback."""
    try:
        app()
    except UserError as err:
        from chromaproxy.engine.trainer import TrainingDiverged

        err_console.print(f"[bold red]error:[/bold red] {err}", highlight=False, soft_wrap=True)
        sys.exit(3 if isinstance(err, TrainingDiverged) else 2)


if __name__ == "__main__":
    main()
