"""Help texts written by the registries: ``{tasks}``, ``{backbones}``, ``{protocols}`` and ``{datasets}`` in a
command's help, epilog or parameter help become the registered names when that ``--help`` is shown.

Filling in at display time keeps every other invocation (and the top-level ``--help``) free of the torch
import the registries need, and a name added to a registry shows up in the help with no edit here. The
filled text is markup-escaped, so an example such as ``tasks=[supervised,rotation]`` reaches the screen as
typed instead of being read as a rich style tag.
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from typer.core import TyperCommand


def registry_names() -> dict[str, str]:
    from chromaproxy.data.sources import SOURCES
    from chromaproxy.eval.protocols import PROTOCOLS
    from chromaproxy.models import BACKBONES
    from chromaproxy.tasks import TASKS

    registries = {"tasks": TASKS, "backbones": BACKBONES, "protocols": PROTOCOLS, "datasets": SOURCES}
    return {"{" + kind + "}": ", ".join(names) for kind, names in registries.items()}


def fill(text: str | None, names: dict[str, str]) -> str | None:
    if text is None:
        return None
    for placeholder, value in names.items():
        text = text.replace(placeholder, value)
    return escape(text)


class RegistryHelp(TyperCommand):
    """A command whose help texts are filled from the registries (and escaped) once, when first shown."""

    _filled = False

    def format_help(self, ctx: Any, formatter: Any) -> None:
        if not self._filled:
            names = registry_names()
            self.help, self.epilog = fill(self.help, names), fill(self.epilog, names)
            for param in self.params:
                if getattr(param, "help", None):
                    param.help = fill(param.help, names)
            self._filled = True
        super().format_help(ctx, formatter)
