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

# The record each protocol shows in the per-tap table (and plots against depth): SSL++ uses kNN at k = 10;
# the kNN vote is ``knn.vote`` (weighted by default, majority in the SSL++ presets).
HEADLINE = {
    "knn": {"k": 10, "vote": "weighted"},
    "mlp": {"layers": 2},
    "fewshot": {"seed": "mean"},
    "finetune": {"metric": "cka"},
    "colorization": {"metric": "auc"},
}

# Protocols that measure the whole network (tap None) rather than each tap, and how their row is labelled.
WHOLE_NETWORK_PROTOCOLS = {"colorization"}
WHOLE_NETWORK = "whole network"

# Config section of a protocol's options when it is not the protocol's name (``colorization.*`` is the task's).
OPTION_SECTIONS = {"colorization": "colorquality"}


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
        options = getattr(session.cfg, OPTION_SECTIONS.get(name, name))
        probed = f"the {WHOLE_NETWORK}" if name in WHOLE_NETWORK_PROTOCOLS else ", ".join(session.taps)
        console.print(f"[bold]{name}[/bold] on {probed} ({len(session.train)} train / {len(session.test)} test images)")
        records = PROTOCOLS[name](session, options)
        head = {**manifest(name, session.common_manifest(), options), "headline": headline_keys(name, session.cfg)}
        written[name] = write_results(session.run, name, head, records)
        written.update({path.name: path for path in session.pictures})
        session.pictures.clear()
        console.print(results_table(name, records))
    return written


def headline_keys(protocol: str, cfg) -> dict:
    """The record keys that select ``protocol``'s headline, written into its manifest."""
    wanted = dict(HEADLINE.get(protocol, {}))
    if "vote" in wanted:
        wanted["vote"] = cfg.knn.vote
    return wanted


def headline(protocol: str, records: list[dict], wanted: dict | None = None) -> list[dict]:
    """The records a table or a depth curve shows for ``protocol``: those matching ``wanted`` (a
    manifest's ``headline``; results written before it existed fall back to the defaults)."""
    wanted = HEADLINE.get(protocol, {}) if wanted is None else wanted
    chosen = [r for r in records if all(r.get(k) == v for k, v in wanted.items())]
    return chosen or [r for r in records if r.get("tap") is not None]


# What the terminal table shows per protocol: (records kept, column label). Keys a record lacks are not
# filtered on, so fewshot keeps k = 10 weighted on a kNN base and every record on a linear base.
TABLES = {
    "knn": ({}, lambda r: f"k={r['k']} {r['vote'][:3]}"),  # both votes side by side
    "mlp": ({}, lambda r: f"{r['layers']} FC"),
    "fewshot": ({"seed": "mean", "k": 10, "vote": "weighted"}, lambda r: f"{r['labels_per_class']}/class"),
}


def results_table(protocol: str, records: list[dict]) -> Table:
    """Per-tap table: one row per tap, one column per setting (the full set is in the JSON file)."""
    wanted, label = TABLES.get(protocol, ({}, lambda r: r["metric"]))
    shown = [r for r in records if all(r.get(k, v) == v for k, v in wanted.items())]
    title = {"knn": "knn: top-1 per tap (wei = weighted, maj = majority vote)", "finetune": "finetune: top-1 and CKA before/after",
             "colorization": "colorization quality (AuC and saturation in %)"}
    table = Table(title=title.get(protocol, f"{protocol}: top-1 per tap (%)"))
    columns = list(dict.fromkeys(label(r) for r in shown))
    table.add_column("tap")
    for column in columns:
        table.add_column(column, justify="right")
    for tap in dict.fromkeys(r["tap"] for r in shown):
        cells = {label(r): _cell(r) for r in shown if r["tap"] == tap}
        table.add_row(str(tap) if tap is not None else WHOLE_NETWORK, *(cells.get(c, "") for c in columns))
    return table


def _cell(record: dict) -> str:
    if "unit" in record:  # not a fraction (PSNR in dB)
        return f"{record['value']:.2f} {record['unit']}"
    if "std" in record:
        return f"{100 * record['value']:.2f} ± {100 * record['std']:.2f}"
    return f"{100 * record['value']:.2f}"
