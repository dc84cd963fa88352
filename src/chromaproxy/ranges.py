"""Valid ranges of numeric config keys, declared in the key's type: ``lr: Positive[float] = 0.1``.

The range travels with the type, so every section (base, task or protocol) states it where the key is
defined and ``config._coerce`` checks it wherever the value comes from: preset, command line or a saved
``config.yaml``. A list type checks each item (``ks: list[Positive[int]]``). Kept free of torch and of
``config`` so that task and protocol option modules can import it.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Range:
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # the bound itself is outside the range
    high_open: bool = False

    def admits(self, value: float) -> bool:
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return self.high is None or not (value > self.high or (self.high_open and value == self.high))

    def describe(self, integer: bool = False) -> str:
        """The range in words; for whole numbers an open lower bound reads as the next integer (>= 1)."""
        if self.high is None and integer and self.low_open:
            return f">= {_number(self.low + 1)}"
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {_number(self.low)}"
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        return f"in {left}{_number(self.low)}, {_number(self.high)}{right}"

    def outside(self) -> float:
        """A value just outside the range (for tests that walk every key)."""
        if self.low is not None:
            return self.low if self.low_open else self.low - 1
        return self.high if self.high_open else self.high + 1


def _number(value: float | None) -> str:
    return f"{value:g}"


Positive = Annotated[T, Range(0, low_open=True)]  # > 0: sizes, counts, learning rates, temperatures
NonNegative = Annotated[T, Range(0)]  # >= 0: weight decay, padding, optional parts (0 = off)
Fraction = Annotated[T, Range(0, 1)]  # probabilities, mixing weights
Momentum = Annotated[T, Range(0, 1, high_open=True)]  # SGD momentum, Adam betas, warm-up share of a run
Milestone = Annotated[T, Range(0, 1, low_open=True, high_open=True)]  # a fraction strictly inside the run


def bounds(hint: Any) -> Range | None:
    """The ``Range`` an ``Annotated`` hint declares, if any."""
    if typing.get_origin(hint) is not Annotated:
        return None
    return next((extra for extra in hint.__metadata__ if isinstance(extra, Range)), None)
