"""The impression store's errors, and the masking of passwords in what they say.

Every error is a ``LogError`` (a ``ValueError``) and is raised before any write: ``StoreConnectionError``
(unreachable server, missing driver, a DuckDB file locked by another process), ``SchemaMismatchError`` (an existing
table with other columns; it is never altered), ``EmptyLogError`` (nothing to read), ``UnknownItemError`` (item ids
outside the catalog), ``RunMismatchError``. The store's own errors share the base ``LogStoreError``;
``EmptyLogError`` and ``UnknownItemError`` come from ``stickyrec.agents.errors`` (agents fitting on a log raise
them too). Passwords never appear in messages: URLs are rendered with the password hidden and driver messages
are scrubbed (``scrub_secrets``, which is ``stickyrec.credentials.mask_secrets``).
"""

from __future__ import annotations

from stickyrec.agents.errors import EmptyLogError, LogError, UnknownItemError
from stickyrec.credentials import mask_secrets as scrub_secrets  # the one masking (stickyrec.credentials)


class LogStoreError(LogError):
    """Base class of the impression store's own errors."""


class StoreConnectionError(LogStoreError):
    """The store cannot be opened: unreachable server, bad URL, missing driver, locked or foreign file."""


class SchemaMismatchError(LogStoreError):
    """An existing table (or a DataFrame) does not have the impression log's columns and types."""


class RunMismatchError(LogStoreError):
    """A re-run whose parameters or trajectories differ from the run already stored under that id."""


__all__ = [
    "EmptyLogError",
    "LogError",
    "LogStoreError",
    "RunMismatchError",
    "SchemaMismatchError",
    "StoreConnectionError",
    "UnknownItemError",
    "scrub_secrets",
]
