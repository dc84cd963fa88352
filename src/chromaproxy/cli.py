"""The ``chromaproxy`` command line: one sub-command per user job.

User mistakes (``UserError``) are printed as one red line and exit with status 2; a diverged run exits
with status 3; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from chromaproxy import __version__
from chromaproxy.allocator import keep_freed_memory
from chromaproxy.cli_help import RegistryHelp
from chromaproxy.errors import UserError

if TYPE_CHECKING:
    from chromaproxy.engine.distributed import Dist

console = Console()
err_console = Console(stderr=True)

app = typer.Typer(
    help="Learn visual representations from unlabeled images through proxy tasks, and measure them layer by layer.",
    epilog="Example, the main job (about 11 minutes on 2 CPU cores):\n\n"
    "  chromaproxy pretrain configs/colorization-cifar10-quick.yaml out=runs/color-quick\n\n"
    "  chromaproxy evaluate runs/color-quick --protocol knn,colorization eval.train_limit=10000 eval.test_limit=2000\n\n"
    "Each command has its own --help with examples.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
data_app = typer.Typer(
    help="Inspect datasets: where they are, their splits and whether they are intact.",
    epilog="Example:  chromaproxy data info cifar10 --root ../shared/data",
    no_args_is_help=True,
)
config_app = typer.Typer(
    help="Show resolved configurations and every settable key.",
    epilog="Example:  chromaproxy config show configs/colorization-cifar10-quick.yaml colorization.loss=histogram",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")
app.add_typer(config_app, name="config")

CHECKPOINT_HELP = "Which checkpoint of the run: last, or best (kept only by runs trained with data.val_size > 0)."
# data info takes the skip as a flag; the readers' messages name the config key that pretrain takes.
SKIP_KEY, SKIP_FLAG = "set data.skip_bad=true", "pass --skip-bad"
OVERRIDES_HELP = (  # {…} are filled from the registries when the help is shown (cli_help)
    "Config overrides as key=value, e.g. train.lr=0.05 data.limit=5000 tasks=[supervised,rotation] "
    "task_weights=[1,1]. Tasks: {tasks}. Backbones (model.name): {backbones}. Datasets (data.name): "
    "{datasets}. Every key with its type and default: chromaproxy config show --keys."
)


def _version(value: bool) -> None:
    if value:
        console.print(f"chromaproxy {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit.", metavar=""),
) -> None:
    """chromaproxy: pretrain with proxy tasks (colorization first), evaluate every layer."""
    if ctx.invoked_subcommand != "pretrain" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # Every rank would run the whole command and write the same files at once.
        raise UserError(f"only pretrain runs under torchrun; run 'chromaproxy {ctx.invoked_subcommand}' as one process")


@app.command(
    epilog="Example:  chromaproxy pretrain configs/supervised-cifar10-quick.yaml train.epochs=2 out=runs/try\n\n"
    "Resume a stopped run:  chromaproxy pretrain runs/try/config.yaml resume=true\n\n"
    "Once per seed, then mean ± std (run it again to go on after a stop):  "
    "chromaproxy pretrain configs/sesemi-cifar10-1000-quick.yaml seeds=[0,1,2] out=runs/sesemi\n\n"
    "Several processes or GPUs (train.batch_size is the global batch):  "
    "torchrun --nproc_per_node=4 -m chromaproxy pretrain CONFIG key=value ...",
)
def pretrain(
    config: Path = typer.Argument(..., help="A YAML preset from configs/ (or a run's config.yaml to resume it)."),
    overrides: Optional[list[str]] = typer.Argument(None, help=OVERRIDES_HELP, show_default=False),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved config and exit without training.", metavar=""),
) -> None:
    """Train a backbone with the tasks the config lists; writes a run directory (config, checkpoints, metrics)."""
    from chromaproxy.config import load_config, to_dict
    from chromaproxy.engine import distributed

    cfg = load_config(config, overrides or [])
    if dry_run:
        console.print(yaml.safe_dump(to_dict(cfg), sort_keys=False), end="")
        return
    dist = distributed.from_environment()
    if cfg.seeds:
        from chromaproxy.engine.seeds import run_seeds

        path = run_seeds(cfg, lambda stage: _train(stage, dist), err_console, main=dist.main)
        if dist.main:
            console.print(f"wrote {path}")
        return
    _train(cfg, dist)


def _train(cfg: Any, dist: Dist) -> Path:
    """Rank 0 opens the run directory and tells the others its name; every rank then trains.

    A failure before the first step removes the folder this command created, so nothing is left that
    neither a new run nor a resume would accept; a stop by signal keeps its checkpoint and says how to go on.
    """
    from chromaproxy.engine import distributed
    from chromaproxy.engine.trainer import Trainer

    device = distributed.setup(dist, cfg.device)
    run, created = _open_run(cfg, dist, device)
    resume = f"chromaproxy pretrain {run}/config.yaml resume=true"
    if dist.enabled:
        resume = f"torchrun --nproc_per_node={dist.world_size} -m {resume}"
    distributed.stop_with_the_job(dist)
    try:
        trainer = Trainer(cfg, run, err_console, dist)
    except (UserError, KeyboardInterrupt) as err:
        if created and dist.main:
            shutil.rmtree(run, ignore_errors=True)
        if isinstance(err, UserError):
            raise
        raise UserError("interrupted while the run was being prepared, before any training; start it again") from None
    test = _fit(trainer, dist, run, resume)
    if test and dist.main:
        console.print("test  " + "  ".join(f"{k} {v:.4f}" for k, v in test.items()))
    if dist.main:
        console.print(f"done: {run}")
    return run


def _open_run(cfg: Any, dist: Dist, device) -> tuple[Path, bool]:
    """The run directory every rank uses (rank 0 plans and starts it) and whether this command created it;
    ``cfg.resume`` ends true only where a checkpoint exists to resume from."""
    from chromaproxy.engine import distributed
    from chromaproxy.device import precision
    from chromaproxy.engine.run_dir import has_checkpoint, plan_run_dir, start_run_dir

    run, note, created = None, None, False
    if dist.main:
        run, note = plan_run_dir(cfg)
        created = not run.exists()
        start_run_dir(cfg, run)
    run = Path(distributed.broadcast_text(str(run) if dist.main else None, dist, device))
    cfg.resume = cfg.resume and has_checkpoint(run)  # as rank 0 decided
    if dist.main:
        ranks = f" ({dist.world_size} processes, {dist.local_batch(cfg.train.batch_size)} images each per step)"
        where = f" ({precision(device)} on {device.type})"
        err_console.print(f"run directory: [bold]{run}[/bold]{where}" + (ranks if dist.enabled else ""))
        if note:
            err_console.print(f"[yellow]note:[/yellow] {note}", soft_wrap=True)
    return run, created


def _fit(trainer: Any, dist: Dist, run: Path, resume: str) -> dict:
    """``trainer.fit()``, with every way it can stop early turned into a message naming ``resume``."""
    from chromaproxy.engine import distributed
    from chromaproxy.engine.stopping import StopRequested

    try:
        with distributed.sigterm_held_once_failed(dist):
            return trainer.fit()
    except StopRequested as stop:
        if dist.main:
            err_console.print(f"stopped by {stop}; the checkpoint is written. Continue with: {resume}", soft_wrap=True)
        raise typer.Exit(stop.exit_status) from None
    except KeyboardInterrupt:
        raise UserError(f"interrupted before the step ended; the last checkpoint is kept. Continue with: {resume}") from None
    except RuntimeError as err:
        if not distributed.lost_peer(err, dist):
            raise
        first = re.sub(r"^\[[^\]]*\]\s*", "", str(err).splitlines()[0])  # drop gloo's "[pair.cc:537]"
        why = first.split(". ")[0][:120]
        raise UserError(
            f"another process of this job stopped ({why}); its own message is above. "
            f"The last checkpoint in {run}/checkpoints is kept; continue with: {resume}"
        ) from None


@app.command(
    epilog="Examples:\n\n  chromaproxy cluster configs/iic-cifar10-quick.yaml out=runs/iic-quick\n\n"
    "  chromaproxy pretrain configs/sslpp-rotation-cifar10-quick.yaml pseudolabel.labels=runs/iic-quick\n\n"
    "Resume a stopped clustering:  chromaproxy cluster runs/iic-quick/config.yaml resume=true",
)
def cluster(
    config: Path = typer.Argument(..., help="An IIC preset (tasks=[iic]), e.g. configs/iic-cifar10-quick.yaml, or a cluster run's config.yaml."),
    overrides: Optional[list[str]] = typer.Argument(None, help=OVERRIDES_HELP, show_default=False),
) -> None:
    """Cluster the training images with IIC: train, then assign every image; writes RUN/labels.safetensors
    (the pseudolabel task's input) and RUN/clusters.json (cluster accuracy, NMI, ARI, cluster sizes)."""
    from chromaproxy.config import load_config
    from chromaproxy.engine.distributed import Dist
    from chromaproxy.engine.pipeline import assign_clusters

    cfg = load_config(config, overrides or [])
    if list(cfg.tasks) != ["iic"]:
        raise UserError(f"chromaproxy cluster trains tasks=[iic], but {config} lists tasks={cfg.tasks}; start from configs/iic-cifar10-quick.yaml")
    run = _train(cfg, Dist())
    path, metrics = assign_clusters(run, cfg)
    console.print(_cluster_table(metrics))
    console.print(f"wrote {path}")


@app.command(
    epilog="Example:  chromaproxy pipeline configs/sslpp-rotation-cifar10-quick.yaml out=runs/sslpp\n\n"
    "Run the same command again after a stop: finished stages are skipped, a stopped one resumes.",
)
def pipeline(
    config: Path = typer.Argument(..., help="An SSL++ preset (a proxy task + pseudolabel, with pipeline.cluster), e.g. configs/sslpp-rotation-cifar10-quick.yaml."),
    overrides: Optional[list[str]] = typer.Argument(None, help=OVERRIDES_HELP, show_default=False),
) -> None:
    """SSL++ end to end into one folder: cluster (IIC) → pretrain with pseudo-labels → the proxy task
    alone → evaluate both → report.md setting them side by side per block."""
    from chromaproxy.config import load_config
    from chromaproxy.engine.distributed import Dist
    from chromaproxy.engine.pipeline import run_pipeline

    cfg = load_config(config, overrides or [])
    path = run_pipeline(cfg, lambda stage: _train(stage, Dist()), err_console)
    console.print(f"wrote {path}")


@app.command(
    epilog="Example:  chromaproxy kmeans runs/rot-quick --tap block3 --k 70 --out runs/kmeans70\n\n"
    "then:  chromaproxy pretrain configs/sslpp-rotation-cifar10-quick.yaml pseudolabel.labels=runs/kmeans70 pseudolabel.head=kmeans",
)
def kmeans(
    run: Path = typer.Argument(..., help="A trained run whose frozen features are clustered."),
    out: Path = typer.Option(..., "--out", help="Folder for labels.safetensors and clusters.json."),
    tap: str = typer.Option("block2", help="The tap whose average-pooled features are clustered."),
    k: int = typer.Option(70, "--k", min=2, help="Number of clusters."),
) -> None:
    """SSL++'s k-means baseline: cluster a trained backbone's features into pseudo-labels (labels file head 'kmeans')."""
    from chromaproxy.engine.data import training_images
    from chromaproxy.eval.clustering import kmeans_labels
    from chromaproxy.io import read_run_config

    path, metrics = kmeans_labels(run, training_images(read_run_config(run))[2], tap, k, out)
    console.print(_cluster_table(metrics))
    console.print(f"wrote {path}")


def _cluster_table(metrics: dict[str, dict[str, Any]]) -> Table:
    """One row per head; accuracy one-to-one (Hungarian) and many-to-one, in % of the scored images."""
    table = Table("head", "k", "used", "min %", "max %", "acc 1:1", "acc m:1", "NMI", "ARI")
    for head, m in metrics.items():
        accuracies = [f"{100 * m[key]:.1f}" if key in m else "-" for key in ("hungarian", "many_to_one")]
        agreement = [f"{m[key]:.3f}" if key in m else "-" for key in ("nmi", "ari")]
        shares = [f"{100 * m['smallest']:.1f}", f"{100 * m['largest']:.1f}"]
        table.add_row(head, str(m["k"]), str(m["used"]), *shares, *accuracies, *agreement)
    return table


@app.command(
    epilog="Examples:\n\n  chromaproxy mine configs/transitive-davis-quick.yaml out=runs/ti-graph\n\n"
    "  chromaproxy pretrain configs/transitive-davis-quick.yaml graph=runs/ti-graph out=runs/ti\n\n"
    "Sharded:  chromaproxy mine CONFIG mine.videos=DIR mine.shard=0/2 out=g0  (and 1/2 into g1), then\n\n"
    "  chromaproxy mine CONFIG mine.shards=[g0,g1] out=runs/graph",
)
def mine(
    config: Path = typer.Argument(..., help="A transitive-invariance preset, e.g. configs/transitive-davis-quick.yaml."),
    overrides: Optional[list[str]] = typer.Argument(None, help=OVERRIDES_HELP, show_default=False),
) -> None:
    """Videos → tracked patches → a graph of intra-instance, inter-instance and transitive edges (Wang et al.
    2017); writes OUT/graph.safetensors, OUT/graph.json and OUT/edges.png (sample edges of each kind)."""
    from chromaproxy.config import load_config
    from chromaproxy.video.command import PICTURE, run_mine

    cfg = load_config(config, overrides or [])
    if cfg.out is None:
        raise UserError("chromaproxy mine needs out=DIR, the folder for the patches and the graph")
    out = Path(cfg.out)
    summary = run_mine(cfg, out, lambda path, tracks: err_console.print(f"{path.name}: {tracks} tracks"))
    if "edges" not in summary:
        console.print(f"wrote shard {cfg.mine.shard} ({sum(summary['tracks'].values())} tracks) to {out}")
        return
    counts = ", ".join(f"{kind} {n}" for kind, n in summary["edges"].items())
    console.print(f"{summary['nodes']} patches, {summary['child_groups']} child groups; edges: {counts}")
    console.print(f"wrote {out / 'graph.safetensors'}, {out / 'graph.json'}, {out / PICTURE}")


@app.command(
    epilog="Examples:\n\n  chromaproxy colorize runs/color photo.jpg more/*.png --out colorized/\n\n"
    "  chromaproxy colorize runs/color photos/ --out colorized/ --size 64 --decode mode\n\n"
    "  chromaproxy colorize runs/pic-quick photo.jpg --samples 8 --out colorized/   (8 different colorizations)",
)
def colorize(
    run: Path = typer.Argument(..., help="A run directory trained with the colorization or the pic task."),
    inputs: list[str] = typer.Argument(..., help="Image files, folders (searched recursively) or glob patterns such as 'photos/*.jpg'."),
    out: Path = typer.Option(..., "--out", help="Folder for the PNGs, one per input (<name>.png; same names get -2, -3 …)."),
    size: Optional[int] = typer.Option(None, "--size", help="Side the network sees, S x S (default: the run's data.image_size)."),
    decode: Optional[str] = typer.Option(None, "--decode", help="How ab is read from the head. colorization runs: annealed (default), mode or mean of the predicted bins; PIC runs: sample (default), component-mode (a sampled component's mode) or mode (the most likely chroma, pixel by pixel)."),
    temperature: Optional[float] = typer.Option(None, "--temperature", help="Annealed-mean temperature (default: the run's colorization.temperature, 0.38), or a PIC run's sampling temperature (default pic.temperature, 1)."),
    samples: int = typer.Option(1, "--samples", help="PIC runs: colorizations per photo, written <name>-1.png … <name>-K.png."),
    seed: int = typer.Option(0, "--seed", help="PIC runs: seed of the draws (the same seed gives the same images)."),
    checkpoint: str = typer.Option("last", help=CHECKPOINT_HELP),
) -> None:
    """Colorize photographs of any size and mode; only their lightness is used, the output keeps full resolution."""
    from chromaproxy.inference.colorize import colorize_paths

    done, failed = colorize_paths(run, inputs, out, size=size, decode=decode, temperature=temperature,
                                  checkpoint=checkpoint, console=err_console, samples=samples, seed=seed)
    written = f"{len(done)} images ({samples} per photo)" if samples > 1 else str(len(done))
    console.print(f"colorized {written}, failed {len(failed)}" + (f" → {out}" if done else ""))
    if failed:
        raise typer.Exit(1)


@app.command(
    epilog="Examples:\n\n  chromaproxy sample runs/gray-pcnn --n 64 --out samples.png\n\n"
    "  chromaproxy sample runs/pyr-pcnn --n 64 --map --out map-samples.png   (MAP sampling)\n\n"
    "  chromaproxy sample runs/pyr-pcnn --n 64 --variance-reduction 0.5 --out sharper.png\n\n"
    "  chromaproxy sample runs/pyr-pcnn --n 8 --stages --out stages.png   (8, 16 and 32 px draws side by side)\n\n"
    "  chromaproxy sample runs/gray-pcnn --gray-from test --n 8 --out coloured.png   (gray | samples | truth)",
)
def sample(
    run: Path = typer.Argument(..., help="A run trained with pixelcnn, grayscale_pixelcnn or pyramid_pixelcnn."),
    n: int = typer.Option(64, "--n", min=1, help="Images to draw (a grid 8 wide); with --gray-from, test images to colour."),
    out: Path = typer.Option(Path("samples.png"), "--out", help="The PNG grid to write."),
    map_sampling: bool = typer.Option(False, "--map", help="MAP sampling: draw a mixture component by its weight, then take its mode."),
    variance_reduction: float = typer.Option(0.0, "--variance-reduction", min=0.0, help="Lower every component's log-scale by this (the thesis: 0.5 to 1 gives cleaner images)."),
    temperature: float = typer.Option(1.0, "--temperature", min=1e-3, help="Divide the logits and multiply the scales: below 1 is more conservative."),
    seed: int = typer.Option(0, "--seed", help="Seed of the draws (the same seed gives the same images)."),
    stages: bool = typer.Option(False, "--stages", help="One row per image with every factor's draw: a grayscale model's X̂ then X, a pyramid's 8, 16, 32 px images."),
    gray_from: Optional[str] = typer.Option(None, "--gray-from", help="'test': colour the 4-bit gray of the run's test images instead (grayscale_pixelcnn runs)."),
    checkpoint: str = typer.Option("last", help=CHECKPOINT_HELP),
) -> None:
    """Draw images from an image-model run (PixelCNN, Grayscale or Pyramid PixelCNN) into a PNG grid."""
    from chromaproxy.inference.sample import sample_run
    from chromaproxy.pixelcnn.image_models import Decode

    decode = Decode("component-mode" if map_sampling else "sample", temperature, variance_reduction)
    gray = None
    if gray_from is not None:
        if gray_from != "test":
            raise UserError(f"--gray-from {gray_from}: only 'test' (the run's test split) is supported")
        from chromaproxy.eval.session import open_run

        gray = open_run(run, [f"eval.test_limit={n}"], checkpoint).test.images
    with err_console.status(f"drawing {n} images …"):
        path = sample_run(run, n, out, decode, seed, checkpoint, gray, stages=stages, notice=err_console.print)
    console.print(f"wrote {path}")


@app.command(
    epilog="Examples:\n\n  chromaproxy evaluate runs/rot --protocol knn,linear,conv --taps all\n\n"
    "  chromaproxy evaluate runs/rot --preset configs/eval-sslpp-cifar10-quick.yaml\n\n"
    "  chromaproxy evaluate runs/rot --protocol knn eval.train_limit=10000 eval.test_limit=2000\n\n"
    "  chromaproxy evaluate --random configs/supervised-cifar10-quick.yaml --out runs/random --protocol knn",
)
def evaluate(
    run: Optional[Path] = typer.Argument(None, help="A run directory written by 'chromaproxy pretrain'."),
    overrides: Optional[list[str]] = typer.Argument(None, help="key=value overrides, e.g. eval.train_limit=10000 knn.ks=[10] conv.epochs=5.", show_default=False),
    protocol: Optional[str] = typer.Option(None, "--protocol", "-p", help="Comma-separated, from: {protocols} (default: eval.protocols, knn)."),
    preset: Optional[Path] = typer.Option(None, "--preset", help="An evaluation preset, e.g. configs/eval-sslpp-cifar10-quick.yaml."),
    taps: Optional[str] = typer.Option(None, help="Comma-separated taps, or 'all' (default: eval.taps of the config, all)."),
    checkpoint: str = typer.Option("last", help=CHECKPOINT_HELP),
    random: Optional[Path] = typer.Option(None, "--random", help="Evaluate a seeded random-init backbone of this preset instead of a run."),
    out: Optional[Path] = typer.Option(None, "--out", help="With --random: the directory that becomes its run directory."),
) -> None:
    """Probe the frozen backbone at every tap with standard protocols; writes RUN/eval/<protocol>.json."""
    from chromaproxy.eval.evaluate import evaluate as run_protocols
    from chromaproxy.eval.evaluate import parse_protocols
    from chromaproxy.eval.session import open_random, open_run

    extra = list(overrides or []) + ([f"eval.taps=[{taps}]"] if taps else [])
    extra += [f"eval.protocols=[{protocol}]"] if protocol else []
    if random is not None:
        if run is not None:
            extra.insert(0, str(run))
        if out is None:
            raise UserError("--random needs --out DIR: the directory that will hold its config.yaml and eval/")
        session = open_random(random, extra, out, preset)
    elif run is None:
        raise UserError("give a run directory (chromaproxy evaluate runs/NAME) or --random CONFIG --out DIR")
    else:
        session = open_run(run, extra, checkpoint, preset)
    written = run_protocols(session, parse_protocols(",".join(session.cfg.eval.protocols)), console)
    console.print("wrote " + ", ".join(str(p) for p in written.values()))


@app.command(
    epilog="Examples:\n\n  chromaproxy report runs/rot            (writes runs/rot/report.md)\n\n"
    "  chromaproxy report runs/random runs/sup runs/rot --out reports/cifar10",
)
def report(
    runs: list[Path] = typer.Argument(..., help="Run directories with eval/*.json results or a final test result (a seeds=[...] folder too)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for report.md and plots/ (default: the run itself for one run, <their common folder>/report for several)."),
    tap: Optional[str] = typer.Option(None, help="Tap for the t-SNE and retrieval pictures (default: each run's best tap by kNN)."),
    visuals: bool = typer.Option(True, help="Draw the t-SNE map and retrieval grid (re-extracts one tap's features).", metavar=""),
) -> None:
    """Markdown tables side by side (test error with its spread over seeds, every evaluation protocol)
    and accuracy-against-depth plots of runs."""
    from chromaproxy.eval.report import test_error_table, write_report

    if out is None:
        out = runs[0] if len(runs) == 1 else Path(os.path.commonpath([r.resolve() for r in runs])) / "report"
    path, warnings = write_report(runs, out, visuals=visuals, tap=tap)
    for warning in warnings:
        err_console.print(f"[bold yellow]warning:[/bold yellow] {escape(warning)}", highlight=False, soft_wrap=True)
    labels, rows = test_error_table(runs)
    if rows:
        table = Table("test error (%)", *labels, box=None)
        for row in rows:
            table.add_row(*row)
        console.print(table)
    console.print(f"wrote {path}")


@app.command(
    epilog="Examples:\n\n  chromaproxy annotate runs/sec --port 8765        (open the URL it prints; Ctrl-C when done)\n\n"
    "  chromaproxy annotate runs/sec --scripted          (marks from the ground-truth masks, no person)\n\n"
    "then:  chromaproxy pretrain configs/sec-pets3-quick.yaml sec.micro=runs/sec/micro.json out=runs/sec-micro",
)
def annotate(
    run: Path = typer.Argument(..., help="A run directory with a cue network (a SEC run, or a CAM network from benchmarks/micro_annotation.py)."),
    port: int = typer.Option(8765, "--port", help="Port of the local page."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind. Keep the default: another address lets anyone who can reach it rewrite micro.json."),
    scripted: bool = typer.Option(False, "--scripted", help="Mark clusters from the training masks instead of serving the page: a cluster whose region lies under --overlap inside its class's mask is a distractor.", metavar=""),
    overlap: float = typer.Option(0.5, "--overlap", min=0.0, max=1.0, help="With --scripted: the share of a cluster's region inside the class's mask below which it is a distractor."),
    samples: int = typer.Option(12, "--samples", min=1, help="Training photos per class shown in each cluster's heatmap strip."),
    root: Optional[str] = typer.Option(None, "--root", help="Parent folder of the mask datasets (default: $CHROMAPROXY_DATA, else ~/.cache/chromaproxy)."),
    recompute: bool = typer.Option(False, "--recompute", help="Cluster again even if RUN/micro/ holds clusters (marks are lost).", metavar=""),
) -> None:
    """Micro-annotation: cluster the patterns the run's cue network finds on each class's foreground
    (cached in RUN/micro/), then serve a local page that shows each cluster's heatmaps on training photos
    and saves a click per cluster, object or distractor, to RUN/micro.json."""
    from chromaproxy.data.sources import resolve_root
    from chromaproxy.segment.annotate import Settings, open_cue_network, prepare
    from chromaproxy.segment.sources import load_masks

    network, data = open_cue_network(run)
    splits = load_masks(data, resolve_root(root))
    if recompute or not (run / "micro.json").is_file():
        err_console.print(f"clustering the foreground patterns of {len(splits.train)} {data} training photos into {run / 'micro'}", soft_wrap=True)
    micro = prepare(run, splits.train, splits.classes, network, Settings(data=data, samples=samples), recompute)
    if scripted:
        _scripted_marks(run, micro, network, splits, overlap)
    else:
        _serve_page(run, host, port)


def _scripted_marks(run: Path, micro: dict, network: Any, splits: Any, overlap: float) -> None:
    from chromaproxy.segment.annotate import run_cues
    from chromaproxy.segment.micro import FOREGROUND, distractor_share
    from chromaproxy.segment.micro_file import write_micro
    from chromaproxy.segment.micro_script import scripted_marks

    triple = run_cues(network, splits.train, len(splits.classes))
    overlaps = scripted_marks(micro, triple, splits.train.masks, FOREGROUND, overlap)
    write_micro(run / "micro.json", micro)
    table = Table("class", "cluster", "patterns", "inside mask", "mark")
    for c, shares in overlaps.items():
        for m, share in enumerate(shares):
            cluster = micro["classes"][str(c)]["clusters"][m]
            table.add_row(splits.classes[c], str(m), str(cluster["patterns"]), "-" if share is None else f"{100 * share:.0f}%", cluster["mark"])
    console.print(table)
    marked, total = distractor_share(micro)
    console.print(f"{marked} of {total} clusters marked distractor; wrote {run / 'micro.json'}")


def _serve_page(run: Path, host: str, port: int) -> None:
    from chromaproxy.web.server import LOOPBACK, AnnotationServer

    try:
        server = AnnotationServer(run, host, port)
    except OSError as error:
        raise UserError(f"cannot serve on {host}:{port} ({error.strerror}); pick another port with --port") from None
    if host not in LOOPBACK:
        err_console.print(f"[bold yellow]warning:[/bold yellow] bound to {host}: anyone who can reach it can change {run / 'micro.json'}")
    console.print(f"micro-annotation page: [bold]{server.url}[/bold]  (marks saved to {run / 'micro.json'}; Ctrl-C to stop)", soft_wrap=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        console.print(f"stopped; the marks are in {run / 'micro.json'}")
    finally:
        server.server_close()


@data_app.command(
    "info",
    epilog="Examples:  chromaproxy data info cifar10\n\n  chromaproxy data info folder --path ~/photos --image-size 64",
)
def data_info(
    name: str = typer.Argument(..., help="Dataset source: {datasets}; or a mask dataset: pets3, coco200, camvid, voc."),
    root: Optional[str] = typer.Option(None, help="Parent folder of the standard datasets (default: $CHROMAPROXY_DATA, else ~/.cache/chromaproxy)."),
    path: Optional[str] = typer.Option(None, help="The image folder (folder source), or a standard dataset's own folder instead of ROOT/NAME."),
    image_size: int = typer.Option(32, help="Side the folder source resizes images to."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip (and count) unreadable files instead of stopping.", metavar=""),
    download: bool = typer.Option(True, help="Download a missing standard dataset when the network allows.", metavar=""),
) -> None:
    """Where a dataset is, its split sizes and per-class counts, and an integrity verdict."""
    from chromaproxy.data.sources import inspect, load_source
    from chromaproxy.segment.sources import MASK_SOURCES

    if name in MASK_SOURCES:
        _mask_info(name, root, path)
        return
    try:
        splits = load_source(name, root=root, path=path, image_size=image_size, skip_bad=skip_bad, download=download)
    except UserError as error:
        raise UserError(str(error).replace(SKIP_KEY, SKIP_FLAG)) from None
    report = inspect(splits)
    console.print(f"[bold]{report.name}[/bold] at {report.location}")
    console.print(_class_table(report))
    for check, passed, detail in report.checks:
        mark = "[green]ok[/green]  " if passed else "[red]FAIL[/red]"
        console.print(f"  {mark} {check}: {detail}")
    console.print(f"integrity: {report.verdict}")
    if not report.verdict.startswith("ok"):
        raise typer.Exit(1)


def _mask_info(name: str, root: Optional[str], path: Optional[str]) -> None:
    """A mask dataset: per class, images holding it and its pixels, per split."""
    from chromaproxy.data.sources import resolve_root
    from chromaproxy.segment.info import mask_report
    from chromaproxy.segment.sources import load_masks

    splits = load_masks(name, resolve_root(root), path)
    report = mask_report(splits)
    console.print(f"[bold]{name}[/bold] at {splits.location}: {len(splits.train)} train / {len(splits.test)} test images")
    columns = [f"{split} {what}" for split in report for what in ("images", "pixels")]
    table = Table("id", "class", *columns, title="images holding each class, and its pixels")
    for index, class_name in enumerate(splits.classes):
        table.add_row(str(index), class_name, *(f"{report[s][what][index]:,}" for s in report for what in ("images", "pixels")))
    console.print(table)
    for split, stats in report.items():
        share = stats["ignored"] / max(1, stats["photo_pixels"])
        console.print(f"  {split}: {stats['photo_pixels']:,} photo pixels, {100 * share:.1f}% ignored (255)")


def _class_table(report) -> Table:
    table = Table("class", *report.splits, title="images per class")
    names = report.class_names or ["(unlabeled)"]
    for row, name in enumerate(names):
        table.add_row(name, *(str(report.per_class[s][row]) if report.per_class.get(s) else "-" for s in report.splits))
    table.add_row("[bold]total[/bold]", *(str(n) for n in report.splits.values()))
    return table


@config_app.command(
    "show",
    epilog="Examples:  chromaproxy config show configs/supervised-cifar10-quick.yaml train.lr=0.05\n\n"
    "  chromaproxy config show --keys            (every key: type, default, what it does)",
)
def config_show(
    config: Optional[Path] = typer.Argument(None, help="A YAML preset; without it, the defaults."),
    overrides: Optional[list[str]] = typer.Argument(None, help=OVERRIDES_HELP, show_default=False),
    keys: bool = typer.Option(False, "--keys", help="List every settable key with its type, default (after the preset) and comment.", metavar=""),
) -> None:
    """Print the fully resolved config (every key with its value) after the preset and overrides."""
    from chromaproxy.config import load_config, to_dict

    overrides = overrides or []
    if config is not None and "=" in config.name and not config.exists():
        config, overrides = None, [str(config), *overrides]
    cfg = load_config(config, overrides)
    if keys:
        console.print(_keys_table(cfg))
        return
    console.print(yaml.safe_dump(to_dict(cfg), sort_keys=False), end="")


def _keys_table(cfg: Any) -> Table:
    from chromaproxy.config_keys import key_table

    table = Table("key", "type", "value", "what it does", title="settable keys (key=value on any command)")
    for row in key_table(cfg):
        table.add_row(*(escape(cell) for cell in row))
    return table


for _typer_app in (app, data_app, config_app):
    for _command in _typer_app.registered_commands:
        _command.cls = RegistryHelp


def main() -> None:
    """Entry point: runs the app, turns user errors into one line without a traceback, and only then
    leaves the process group a ``torchrun`` job joined, once no error traceback keeps its trainer alive."""
    status = _run_app()
    distributed = sys.modules.get("chromaproxy.engine.distributed")  # not imported here: --help stays torch-free
    if distributed is not None:
        distributed.shutdown()
    sys.exit(status)


def _run_app() -> int | str | None:
    try:
        keep_freed_memory()
        app()
    except SystemExit as done:
        return done.code
    except UserError as err:
        from chromaproxy.engine.trainer import TrainingDiverged

        rank = escape(f"[rank {os.environ['RANK']}] ") if int(os.environ.get("WORLD_SIZE", "1")) > 1 else ""
        err_console.print(f"{rank}[bold red]error:[/bold red] {escape(str(err))}", highlight=False, soft_wrap=True)
        return 3 if isinstance(err, TrainingDiverged) else 2
    return 0


if __name__ == "__main__":
    main()
