"""Errors about an impression log that an agent fitting on it can raise (the platform's stores raise them too).

They live here, in the agents layer, so that agents fitting on a log never import the platform
(``stickyrec.experiments.platform_log``), which re-exports them beside its store errors.
"""

from __future__ import annotations


class LogError(ValueError):
    """Base class of the errors about an impression log (reading it, storing it, fitting on it)."""


class EmptyLogError(LogError):
    """There are no impressions to read (or to write, or to fit on)."""


class UnknownItemError(LogError):
    """Item ids outside the catalog (negative, or at least its size)."""


__all__ = ["EmptyLogError", "LogError", "UnknownItemError"]
