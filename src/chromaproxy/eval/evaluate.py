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

WHOLE_NETWORK = "whole network"  # the row label of a protocol that measures the whole network


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
        protocol = PROTOCOLS[name]
        options = getattr(session.cfg, protocol.options_section or name)
        probed = f"the {WHOLE_NETWORK}" if protocol.whole_network else ", ".join(session.taps)
        probed += f" ({len(session.train)} train / {len(session.test)} test images)"
        console.print(f"[bold]{name}[/bold] on {protocol.describe(session, options) if protocol.describe else probed}")
        records = protocol.run(session, options)
        common = {**session.common_manifest(), **session.manifest_extra}
        session.manifest_extra.clear()
        head = {**manifest(name, common, options), "headline": protocol.headline(session.cfg)}
        written[name] = write_results(session.run, name, head, records)
        written.update({path.name: path for path in session.pictures})
        session.pictures.clear()
        console.print(results_table(name, records, head["headline"]))
    return written


def default_headline(protocol: str) -> dict:
    """The headline of results written before manifests named theirs (an unknown protocol has none)."""
    return PROTOCOLS[protocol].headline(None) if protocol in PROTOCOLS else {}


def headline(protocol: str, records: list[dict], wanted: dict | None = None) -> list[dict]:
    """The records a table or a depth curve shows for ``protocol``: those matching ``wanted`` (a
    manifest's ``headline``; results written before it existed fall back to the defaults)."""
    wanted = default_headline(protocol) if wanted is None else wanted
    chosen = [r for r in records if all(r.get(k) == v for k, v in wanted.items())]
    return chosen or [r for r in records if r.get("tap") is not None]


def results_table(protocol: str, records: list[dict], headline_keys: dict) -> Table:
    """Per-tap table: one row per tap, one column per setting (the full set is in the JSON file)."""
    spec = PROTOCOLS[protocol]
    keep = spec.table_keep(headline_keys)
    shown = [r for r in records if all(r.get(k, v) == v for k, v in keep.items())]
    table = Table(title=spec.title or f"{protocol}: top-1 per tap (%)")
    columns = list(dict.fromkeys(spec.column(r) for r in shown))
    table.add_column("tap")
    for column in columns:
        table.add_column(column, justify="right")
    for tap in dict.fromkeys(r["tap"] for r in shown):
        cells = {spec.column(r): _cell(r) for r in shown if r["tap"] == tap}
        table.add_row(str(tap) if tap is not None else WHOLE_NETWORK, *(cells.get(c, "") for c in columns))
    return table


def _cell(record: dict) -> str:
    if "unit" in record:  # not a fraction (PSNR in dB)
        return f"{record['value']:.2f} {record['unit']}"
    if "std" in record:
        return f"{100 * record['value']:.2f} ± {100 * record['std']:.2f}"
    return f"{100 * record['value']:.2f}"
