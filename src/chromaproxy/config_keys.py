"""Every settable config key with its type, default and comment, read from the config dataclasses and
their source (the comment after each field), so ``chromaproxy config show --keys`` cannot drift from the
code: a new key, task or protocol appears there by being declared.
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import re
import tokenize
import typing
from collections.abc import Iterator
from typing import Annotated, Any, Literal, NamedTuple

from chromaproxy.ranges import bounds

# A base field of ``config._BASE_FIELDS``: ("name", type, field(...)),  # comment
_BASE_FIELD_LINE = re.compile(r'^\s*\("(\w+)",.*#\s*(.*)$')


class KeyInfo(NamedTuple):
    key: str
    type: str
    default: str
    comment: str


def key_table(cfg: Any) -> list[KeyInfo]:
    """One row per dotted key of the config ``cfg`` (its defaults), in declaration order."""
    return list(_rows(cfg, ""))


def _rows(section: Any, prefix: str) -> Iterator[KeyInfo]:
    hints = typing.get_type_hints(type(section), include_extras=True)
    comments = field_comments(type(section))
    for item in dataclasses.fields(section):
        value = getattr(section, item.name)
        if dataclasses.is_dataclass(value):
            yield from _rows(value, f"{prefix}{item.name}.")
        else:
            yield KeyInfo(prefix + item.name, describe_type(hints[item.name]), _show(value), comments.get(item.name, ""))


def field_comments(cls: type) -> dict[str, str]:
    """{field name: its trailing comment} from the class's source; the generated top-level ``Config``
    has none of its own, so its base fields are read from ``config._BASE_FIELDS``'s lines."""
    from chromaproxy import config

    if cls is config.Config:
        lines = inspect.getsource(config).splitlines()
        return {m.group(1): m.group(2) for m in map(_BASE_FIELD_LINE.match, lines) if m}
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):  # defined outside a file (typed in a console): no comments to read
        return {}
    comments, line_name = {}, {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        row = token.start[0]
        if token.type == tokenize.NAME and row not in line_name:
            line_name[row] = token.string
        elif token.type == tokenize.COMMENT and row in line_name:
            comments[line_name[row]] = token.string.lstrip("#").strip()
    return comments


def describe_type(hint: Any) -> str:
    """A type in words: ``int >= 1``, ``one of sgd|adam``, ``list of float in [0, 1)``, ``float or null``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        limits = bounds(hint)
        text = describe_type(args[0])
        return f"{text} {limits.describe(integer=args[0] is int)}" if limits else text
    if origin is Literal:
        return "one of " + "|".join(str(a) for a in args)
    if origin is list:
        return "list of " + describe_type(args[0])
    if type(None) in args:
        return " or ".join(describe_type(a) for a in args if a is not type(None)) + " or null"
    return getattr(hint, "__name__", str(hint))


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ",".join(_show(v) for v in value) + "]"
    return str(value)
