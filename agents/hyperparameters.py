"""Typed hyperparameters: small frozen dataclasses, each field declaring its type and range, validated in one place.

An agent's settings are a dataclass of ``Hyperparameters`` (``PPOConfig``, ``SlateQConfig``, ``MLPConfig``,
``MLPFitConfig``) whose fields come from the four declarations below::

    @dataclasses.dataclass(frozen=True)
    class MyConfig(Hyperparameters):
        n_envs: int = integer(256, low=1, doc="shoppers stepped together")
        gamma: float = number(0.99, low=0.0, high=1.0)
        schedule: str = choice("constant", ("constant", "linear"))

``Hyperparameters.__post_init__`` checks every field against its declaration (integers and finite numbers in
range, booleans, one of a few choices), stores the checked value (``int``/``float``/``bool``), then calls
``check()`` for constraints between fields. A bad value is a ``HyperparameterError`` (a ``ValueError``) naming the
field and what is allowed; ``from_kwargs`` also refuses unknown names, listing the known ones. ``to_dict()`` is what
checkpoints save, and ``from_kwargs(**saved)`` reads it back.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from stickyrec.inputs import integral, short_repr

INTEGER, NUMBER, FLAG, CHOICE = "integer", "number", "flag", "choice"
MAX_WIDTH = 4096  # a network's hidden or embedding width: a checkpoint naming more is refused before allocating
MAX_ENVS = 65_536  # shoppers stepped together


def integer(default: int, low: int, high: int | None = None, doc: str = "") -> Any:
    """An integer field >= ``low`` (and <= ``high``: sizes a checkpoint may name are bounded before allocation)."""
    return dataclasses.field(default=default, metadata={"type": INTEGER, "low": low, "high": high, "doc": doc})


def number(default: float, low: float, high: float = math.inf, *, open_low: bool = False, doc: str = "") -> Any:
    """A finite real field in [low, high] ((low, high] with ``open_low``)."""
    metadata = {"type": NUMBER, "low": low, "high": high, "open_low": open_low, "doc": doc}
    return dataclasses.field(default=default, metadata=metadata)


def flag(default: bool, doc: str = "") -> Any:
    """A boolean field."""
    return dataclasses.field(default=default, metadata={"type": FLAG, "doc": doc})


def choice(default: str, options: tuple[str, ...], note: str = "", doc: str = "") -> Any:
    """A field holding one of ``options``; ``note`` is added to the error message."""
    return dataclasses.field(default=default, metadata={"type": CHOICE, "options": options, "note": note, "doc": doc})


class HyperparameterError(ValueError):
    """A bad hyperparameter value; ``field`` names the hyperparameter (configs report it by its key path)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def allowed_range(low: float, high: float = math.inf, open_low: bool = False) -> str:
    if math.isinf(high):
        return f"{'>' if open_low else '>='} {low}"
    return f"in {'(' if open_low else '['}{low}, {high}]"


def check_integer(name: str, value: Any, low: int, high: int | None = None) -> int:
    """``value`` as an ``int`` in [low, high] (a float with no fraction, YAML's ``1e3``, counts as one);
    ``HyperparameterError`` (a ``ValueError``) otherwise."""
    value = integral(value)
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or value < low
        or (high is not None and value > high)
    ):
        allowed = f">= {low}" + ("" if high is None else f" and <= {high:,}")
        raise HyperparameterError(f"{name} must be an integer {allowed}, got {short_repr(value)}", name)
    return int(value)


def check_number(name: str, value: Any, low: float, high: float = math.inf, open_low: bool = False) -> float:
    """``value`` as a finite ``float`` in [low, high] ((low, high] with ``open_low``)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not math.isfinite(value)
        or not low <= value <= high
        or (open_low and value == low)
    ):
        raise HyperparameterError(
            f"{name} must be a finite number {allowed_range(low, high, open_low)}, got {short_repr(value)}", name
        )
    return float(value)


def check_value(name: str, value: Any, metadata) -> Any:
    """``value`` checked against a field declaration (``integer``, ``number``, ``flag``, ``choice``) and converted to
    its plain Python type; ``HyperparameterError`` (a ``ValueError``) naming ``name`` and what is allowed."""
    kind = metadata.get("type")
    if kind == INTEGER:
        return check_integer(name, value, metadata["low"], metadata.get("high"))
    if kind == NUMBER:
        return check_number(name, value, metadata["low"], metadata["high"], metadata["open_low"])
    if kind == FLAG:
        if not isinstance(value, (bool, np.bool_)):
            raise HyperparameterError(f"{name} must be True or False, got {short_repr(value)}", name)
        return bool(value)
    if kind == CHOICE:
        options = metadata["options"]
        if not isinstance(value, str) or value not in options:
            note = f" ({metadata['note']})" if metadata["note"] else ""
            raise HyperparameterError(
                f"{name}={short_repr(value)}; allowed: {', '.join(map(repr, options))}{note}", name
            )
        return value
    raise TypeError(f"field {name!r} has no hyperparameter declaration (use integer, number, flag or choice)")


@dataclasses.dataclass(frozen=True)
class Hyperparameters:
    """Base of the typed hyperparameter dataclasses: validation on construction, dict round trip."""

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            object.__setattr__(self, field.name, check_value(field.name, getattr(self, field.name), field.metadata))
        self.check()

    def check(self) -> None:
        """Constraints between fields (``ValueError``); none by default."""

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(field.name for field in dataclasses.fields(cls))

    @classmethod
    def from_kwargs(cls, **kwargs) -> Hyperparameters:
        """The dataclass from keyword arguments; an unknown name is a ``ValueError`` listing the allowed ones."""
        unknown = [key for key in kwargs if key not in cls.names()]
        if unknown:
            raise ValueError(
                f"{cls.__name__} got an unexpected keyword argument {unknown[0]!r}; allowed: {', '.join(cls.names())}"
            )
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.names()}

    def replace(self, **changes) -> Hyperparameters:
        return type(self).from_kwargs(**{**self.to_dict(), **changes})


__all__ = [
    "MAX_ENVS",
    "MAX_WIDTH",
    "HyperparameterError",
    "Hyperparameters",
    "allowed_range",
    "check_integer",
    "check_number",
    "check_value",
    "choice",
    "flag",
    "integer",
    "number",
]
