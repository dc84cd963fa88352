"""``chromaproxy evaluate``: run protocols on a session and write ``eval/<protocol>.json`` for each."""

from __future__ import annotations

import difflib
from pathlib import Path

from rich.console import Console
from rich.table import Table

from chromaproxy.errors import UserError
from chromaproxy.eval.protocols import PROTOCOLS
from chromaproxy.eval.results import manifest, write_results
from chromaproxy.eval.session import EvalSession

# The record each protocol shows in the per-tap table (and plots against depth): SSL++ uses kNN at k = 10.
HEADLINE = {
    "knn": {"k": 10, "vote": "weighted"},
    "mlp": {"layers": 2},
    "fewshot": {"seed": "mean"},
    "finetune": {"metric": "cka"},
}


def parse_protocols(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        if name not in PROTOCOLS:
            close = difflib.get_close_matches(name, PROTOCOLS, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"choose from {', '.join(PROTOCOLS)}"
            raise UserError(f"unknown protocol '{name}': {hint}")
    return names


def evaluate(session: EvalSession, protocols: list[str], console: Console) -> dict[str, Path]:
    written = {}
    for name in protocols:
        options = getattr(session.cfg, name)
        console.print(f"[bold]{name}[/bold] on {', '.join(session.taps)} "
                      f"({len(session.train)} train / {len(session.test)} test images)")
        records = PROTOCOLS[name](session, options)
        head = manifest(name, session.common_manifest(), options)
        written[name] = write_results(session.run, name, head, records)
        console.print(results_table(name, records))
    return written


def headline(protocol: str, records: list[dict]) -> list[dict]:
    """The records a table or a depth curve shows for ``protocol``."""
    wanted = HEADLINE.get(protocol, {})
    chosen = [r for r in records if all(r.get(k) == v for k, v in wanted.items())]
    return chosen or [r for r in records if r.get("tap") is not None]


def results_table(protocol: str, records: list[dict]) -> Table:
    """Per-tap table: one row per tap, one column per remaining parameter combination."""
    table = Table(title=f"{protocol}: top-1 per tap" if protocol != "finetune" else "finetune")
    columns = sorted({_column(r) for r in records}, key=str)
    table.add_column("tap")
    for column in columns:
        table.add_column(column or "value", justify="right")
    for tap in dict.fromkeys(r["tap"] for r in records):
        cells = {_column(r): _cell(r) for r in records if r["tap"] == tap}
        table.add_row(str(tap) if tap is not None else "(network)", *(cells.get(c, "") for c in columns))
    return table


def _column(record: dict) -> str:
    skip = {"tap", "protocol", "value", "std", "seeds", "dim", "pooling", "epochs", "images", "base"}
    return " ".join(f"{k}={v}" for k, v in record.items() if k not in skip)


def _cell(record: dict) -> str:
    if "std" in record:
        return f"{100 * record['value']:.2f} ± {100 * record['std']:.2f}"
    return f"{100 * record['value']:.2f}"
