"""``chromaproxy report``: side-by-side tables and depth curves ("task-specificity curves") of runs.

Reads only ``<run>/eval/*.json`` and the runs' final test metrics (``metrics.jsonl``, or ``seeds.json``
of a folder trained once per seed, shown as mean ± std): the test-error table of semi-supervised runs
comes first; every protocol table cell is the protocol's headline record (the manifest's
``headline``: kNN k = 10 with ``knn.vote``, majority in the SSL++ presets), and the manifest of every protocol is summarised under its table so a reader can tell
exactly how each number was produced.
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from chromaproxy.errors import UserError
from chromaproxy.eval.evaluate import WHOLE_NETWORK, default_headline, headline
from chromaproxy.eval.results import read_results
from chromaproxy.eval.test_results import format_error, read_test_errors
from chromaproxy.eval.visuals import pyplot, write_visuals
from chromaproxy.io import atomic_write_text


STATUS = Console(stderr=True)  # progress lines, kept off stdout


def load_runs(runs: list[Path]) -> dict[str, dict[str, dict]]:
    """{run label: {protocol: results file content}}; a run with neither eval results nor a test result
    is an error."""
    loaded = {}
    for run in runs:
        files = sorted((run / "eval").glob("*.json"))
        if not files and read_test_errors(run) is None:
            raise UserError(f"{run} has no eval/*.json and no test result; run 'chromaproxy evaluate {run} "
                            "--protocol knn' first (or check the path)")
        loaded[_label(run, loaded)] = {f.stem: read_results(f) for f in files}
    return loaded


def test_error_table(runs: list[Path]) -> tuple[list[str], list[list[str]]]:
    """(column labels, rows of [task, cell per run]) of the runs' test errors in %; no rows when no run has one."""
    labels: dict[str, None] = {}
    errors = {}
    for run in runs:
        label = _label(run, labels)
        labels[label] = None
        errors[label] = read_test_errors(run) or {}
    tasks = list(dict.fromkeys(task for found in errors.values() for task in found))
    rows = [[task] + [format_error(*errors[label][task]) if task in errors[label] else "–" for label in labels]
            for task in tasks]
    return list(labels), rows


def _test_error_section(runs: list[Path]) -> list[str]:
    labels, rows = test_error_table(runs)
    if not rows:
        return []
    lines = ["## test error (%)\n", "100 − top-1 on the run's test split after training; over seeds: mean ± "
             "sample standard deviation.\n", "| task | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    return lines + [f"| {' | '.join(row)} |" for row in rows] + [""]


def _label(run: Path, taken: dict) -> str:
    label = run.name
    return label if label not in taken else str(run)


def write_report(runs: list[Path], out: Path, visuals: bool = True, tap: str | None = None) -> tuple[Path, list[str]]:
    """``out/report.md`` with a table and a depth plot per protocol, plus (``visuals``) a t-SNE map and
    a retrieval grid of one tap per run: ``tap``, or the run's best tap by kNN (k = 10).

    Returns the report and its warnings (also written into it): runs probed on different datasets share a
    table only with a warning, since their numbers cannot be compared."""
    loaded = load_runs(runs)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    protocols = sorted({p for results in loaded.values() for p in results})
    warnings = _mixed_datasets(loaded)
    lines = ["# chromaproxy report\n", "Runs: " + ", ".join(f"`{label}`" for label in loaded) + "\n"]
    lines += [f"> **Warning:** {warning}\n" for warning in warnings]
    lines += _test_error_section(runs)
    for protocol in protocols:
        lines += _protocol_section(protocol, loaded, out)
    evaluated = [(run, label, results) for run, (label, results) in zip(runs, loaded.items()) if results]
    if visuals and evaluated:
        lines += ["## Pictures\n"]
        for number, (run, label, results) in enumerate(evaluated, start=1):
            lines += _visual_section(run, label, results, out, tap, f"pictures {number}/{len(evaluated)}")
    path = out / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path, warnings


def _mixed_datasets(loaded: dict) -> list[str]:
    datasets = {label: {c["manifest"].get("dataset") for c in results.values()} for label, results in loaded.items()}
    names = sorted({name for found in datasets.values() for name in found}, key=str)
    if len(names) < 2:
        return []
    where = "; ".join(f"{label}: {', '.join(map(str, sorted(found, key=str)))}" for label, found in datasets.items())
    return [f"these runs were evaluated on different datasets ({where}); numbers across them are not comparable"]


def _protocol_section(protocol: str, loaded: dict, out: Path) -> list[str]:
    curves = {label: _curve(protocol, results[protocol]) for label, results in loaded.items() if protocol in results}
    taps = list(dict.fromkeys(tap for curve in curves.values() for tap in curve))
    shown = ", ".join(f"{key}={value}" for key, value in _headline_of(protocol, loaded).items())
    lines = [f"## {protocol}" + (f" ({shown})" if shown else "") + "\n",
             "| tap | " + " | ".join(curves) + " |", "|---|" + "---|" * len(curves)]
    for tap in taps:
        cells = [f"{100 * curve[tap]:.2f}" if tap in curve else "–" for curve in curves.values()]
        lines.append(f"| {tap if tap is not None else WHOLE_NETWORK} | " + " | ".join(cells) + " |")
    lines.append("")
    for label, results in loaded.items():
        if protocol in results:
            lines.append(f"- `{label}`: {_describe(results[protocol]['manifest'])}")
    if any(tap is not None for tap in taps):
        plot = _depth_plot(protocol, curves, out / "plots" / f"depth_{protocol}.png")
        lines += ["", f"![{protocol} accuracy against depth](plots/{plot.name})"]
    return lines + [""]


def _visual_section(run: Path, label: str, results: dict, out: Path, tap: str | None, counter: str) -> list[str]:
    """Re-extracts one tap's features (its own progress bar) and draws them; a status line says which
    run is being drawn, since the pictures of several runs take minutes."""
    from chromaproxy.eval.session import open_run

    splits = next(iter(results.values()))["manifest"]["splits"]
    session = open_run(run, [f"eval.train_limit={splits['train']}", f"eval.test_limit={splits['test']}"])
    chosen = tap or _best_tap(results) or session.taps[-1]
    STATUS.print(f"{counter}: {label}, tap {chosen} — features of {splits['train']} + {splits['test']} images, "
                 "then t-SNE and retrieval", highlight=False)
    files = write_visuals(session, chosen, out / "plots" / label)
    return [f"### `{label}`, tap {chosen}\n"] + [f"![{f.stem}](plots/{label}/{f.name})" for f in files] + [""]


def _headline_of(protocol: str, loaded: dict) -> dict:
    """The record keys the table shows (the first run's manifest; the defaults for older results)."""
    for results in loaded.values():
        if protocol in results:
            return results[protocol]["manifest"].get("headline") or default_headline(protocol)
    return {}


def _best_tap(results: dict) -> str | None:
    if "knn" not in results:
        return None
    curve = _curve("knn", results["knn"])
    return max(curve, key=curve.get) if curve else None


def _curve(protocol: str, content: dict) -> dict:
    """{tap: value} of the headline records, in depth order (the order the results list them)."""
    return {r["tap"]: r["value"] for r in headline(protocol, content["results"], content["manifest"].get("headline"))}


def _describe(head: dict) -> str:
    splits = head.get("splits", {})
    options = json.dumps(head.get("options", {}), sort_keys=True)
    return (f"{head.get('dataset')} {splits.get('train')}/{splits.get('test')} train/test images, "
            f"input {head.get('input')}, weights {head.get('weights')}, options {options}, "
            f"chromaproxy {head.get('version')} ({(head.get('git_commit') or 'no git')[:10]}), {head.get('date')}")


def depth_positions(curves: dict[str, dict]) -> tuple[dict[str, list[float]], list[str] | None]:
    """x positions of every run's taps, and the tick labels when all runs share the same taps.

    Runs of one backbone are drawn at tap 1, 2, … with the tap names as ticks. Runs of different backbones
    (NIN's block1..4 against ResNet's conv1, layer1..4) have no common tap axis, so each is drawn at
    relative depth k / n, which keeps the shape of each curve comparable."""
    names = {label: [t for t in curve if t is not None] for label, curve in curves.items()}
    lists = list(names.values())
    if all(taps == lists[0] for taps in lists):
        return {label: [k + 1.0 for k in range(len(taps))] for label, taps in names.items()}, lists[0]
    return {label: [(k + 1) / len(taps) for k in range(len(taps))] for label, taps in names.items()}, None


def _depth_plot(protocol: str, curves: dict[str, dict], path: Path) -> Path:
    plt = pyplot()
    positions, ticks = depth_positions(curves)
    figure, axis = plt.subplots(figsize=(8, 4))
    for label, curve in curves.items():
        values = [100 * curve[t] for t in curve if t is not None]
        axis.plot(positions[label], values, marker="o", label=label)
    if ticks is not None:
        axis.set_xticks(range(1, len(ticks) + 1), ticks)
    axis.set_xlabel("tap (depth)" if ticks is not None else "relative depth (tap k of n)")
    axis.set_ylabel("top-1 (%)" if protocol != "finetune" else "linear CKA before/after (%)")
    axis.set_title(f"{protocol}: accuracy against depth")
    axis.grid(alpha=0.3)
    axis.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize="small", frameon=False)  # beside the curves
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path

