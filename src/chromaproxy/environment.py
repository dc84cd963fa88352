"""The ``CHROMAPROXY_*`` switches a process reads from its environment (``CHROMAPROXY_PRECISION``,
``CHROMAPROXY_MALLOC``), checked in one place so that a typo in any of them is the same one-line error
instead of a silently ignored setting. Torch-free: the CLI reads ``CHROMAPROXY_MALLOC`` before it imports
torch.
"""

from __future__ import annotations

import os

from chromaproxy.errors import UserError


def environment_choice(name: str, choices: tuple[str, ...]) -> str:
    """The value of the environment variable ``name``, ``choices[0]`` when it is unset; a value outside
    ``choices`` is a :class:`UserError` that lists them."""
    value = os.environ.get(name, choices[0])
    if value not in choices:
        raise UserError(f"{name}={value!r} is not a choice; use one of {', '.join(choices)}")
    return value
