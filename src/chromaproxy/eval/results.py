"""The results contract: ``eval/<protocol>.json`` = {"manifest": {...}, "results": [...]}.

Every number is written with the protocol that produced it (dataset, splits, input representation, taps,
pooling, probe hyper-parameters, seeds, package version, git commit, date), because the most common
complaint about the peers is numbers nobody can trace to a protocol.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from chromaproxy import __version__
from chromaproxy.io import atomic_write_text


def git_commit() -> str | None:
    """The commit of the chromaproxy source tree, when it is a git checkout."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


def manifest(protocol: str, common: dict[str, Any], options: Any) -> dict[str, Any]:
    return {
        "protocol": protocol,
        **common,
        "options": asdict(options) if is_dataclass(options) else options,
        "version": __version__,
        "git_commit": git_commit(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def record(tap: str | None, protocol: str, metric: str, value: float, **params: Any) -> dict[str, Any]:
    return {"tap": tap, "protocol": protocol, "metric": metric, "value": float(value), **params}


def write_results(run: Path, protocol: str, head: dict[str, Any], results: list[dict[str, Any]]) -> Path:
    """Replace ``run/eval/<protocol>.json`` (re-running a protocol replaces its file)."""
    path = run / "eval" / f"{protocol}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({"manifest": head, "results": results}, indent=2) + "\n")
    return path


def read_results(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())
