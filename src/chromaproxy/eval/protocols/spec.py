"""What a protocol is to the rest of the evaluation: its run function and its own display rules.

Each protocol module ends with one ``PROTOCOL = Protocol(...)``: which records are its headline (the
per-tap value reports and depth plots show), which records and columns its terminal table shows, and
whether it measures each tap or the whole network. Adding a protocol is its module, one registry line,
and its options dataclass in ``protocol_options`` (which ``config`` reads without the evaluation code).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def _metric(record: dict) -> str:
    return record["metric"]


@dataclass(frozen=True)
class Protocol:
    run: Callable[[Any, Any], list[dict]]  # (EvalSession, options section) -> result records
    headline: Callable[[Any | None], dict] = lambda cfg: {}  # record keys of the headline, from the run's config
    # the records the terminal table shows, from the headline (keys a record lacks pass)
    table_keep: Callable[[dict], dict] = lambda headline: {}
    column: Callable[[dict], str] = _metric  # terminal-table column of a record
    title: str | None = None  # terminal-table title; default "<name>: top-1 per tap (%)"
    whole_network: bool = False  # measures the whole trained network (records with tap None), not each tap
    options_section: str | None = None  # config section of its options when not the protocol's name
    # what it runs on, for the line `evaluate` prints, when not the session's splits (its own dataset)
    describe: Callable[[Any, Any], str] | None = None
