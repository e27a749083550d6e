"""The transactional impression logger: buffers a cohort's impressions and commits only complete sessions.

``ImpressionLogger`` buffers impressions and commits, one transaction per flush, only **complete sessions** (a
session is complete once its last step, ``session_ended``, has been logged); the open sessions stay in the buffer.
A flush happens every ``flush_rows`` impressions or ``flush_seconds`` seconds, so a crash or kill loses at most
what was buffered since the last commit (and the sessions still open), never leaves a half-written session.

Re-runs do not duplicate rows because the impressions table is its own ledger: a session is in the store only if all
of it is (the invariant above). ``collect`` reads the run's committed ``(shopper, session) -> row count`` once when it
starts, simulates the run again from its seed, and hands them to the logger, which skips every session already
committed and writes the rest. It also checks that each skipped session has exactly the stored number of rows, so a
run that does not reproduce raises ``RunMismatchError`` instead of mixing two trajectories.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import numpy as np

from stickyrec.experiments.platform_log.backend import LogStore
from stickyrec.experiments.platform_log.errors import RunMismatchError
from stickyrec.experiments.platform_log.schema import ImpressionBatch, check_item_ids, check_name, session_keys

DEFAULT_FLUSH_ROWS = 1_000_000  # impressions buffered before a flush of the complete sessions
DEFAULT_FLUSH_SECONDS = 10.0  # ... or seconds since the last flush: what a crash may lose


@dataclasses.dataclass
class _Steps:
    """Step-level buffer: one entry per (shopper, step), items and propensities as (n, k)."""

    slot: np.ndarray
    day: np.ndarray
    session: np.ndarray
    step: np.ndarray
    clicked_position: np.ndarray
    purchased: np.ndarray
    revenue: np.ndarray
    returned: np.ndarray
    churned: np.ndarray
    ended: np.ndarray
    items: np.ndarray
    propensity: np.ndarray | None

    def take(self, index: np.ndarray) -> _Steps:
        return _Steps(
            **{
                f.name: (None if getattr(self, f.name) is None else getattr(self, f.name)[index])
                for f in dataclasses.fields(self)
            }
        )

    @classmethod
    def concat(cls, parts: Sequence[_Steps]) -> _Steps:
        if len(parts) == 1:
            return parts[0]
        with_propensity = [p.propensity is not None for p in parts]
        if any(with_propensity) and not all(with_propensity):
            for p in parts:
                if p.propensity is None:
                    p.propensity = np.full(p.items.shape, np.nan)
        return cls(
            **{
                f.name: (
                    None if getattr(parts[0], f.name) is None else np.concatenate([getattr(p, f.name) for p in parts])
                )
                for f in dataclasses.fields(cls)
            }
        )

    def __len__(self) -> int:
        return int(self.slot.shape[0])


@dataclasses.dataclass
class LoggerStats:
    """What an ``ImpressionLogger`` wrote: rows and sessions new, rows already stored (a re-run), commits."""

    impressions_written: int = 0
    impressions_skipped: int = 0
    sessions_written: int = 0
    sessions_skipped: int = 0
    commits: int = 0
    write_seconds: float = 0.0


class ImpressionLogger:
    """Buffers the impressions of a cohort stepped together and commits complete sessions to a store.

    Slot ``i`` of the batch is shopper ``shopper_offset + i`` for the whole run (``AutoresetMode.DISABLED``).
    Call ``log_step`` after every ``env.step``; ``close`` at the end flushes what remains (only complete sessions
    are ever written). ``committed`` holds the sessions already in the store for this run (a re-run): they are
    skipped, after checking the re-simulated session has the stored number of rows.

    Args:
        store: an open ``LogStore`` (its schema already checked).
        run_id, policy: written on every row (safe alphabet, see ``NAME_PATTERN``).
        n_shoppers, slate_size: the batch (B) and slate (k) sizes.
        n_items: when given, item ids are checked to be below it before every write.
        shopper_offset: global index of slot 0.
        committed: ``(shopper, session, rows)`` arrays from ``LogStore.committed_sessions``.
        flush_rows: flush once this many impressions are buffered.
        flush_seconds: ... or once this many seconds passed since the last flush.
    """

    def __init__(
        self,
        store: LogStore,
        run_id: str,
        policy: str,
        n_shoppers: int,
        slate_size: int,
        *,
        n_items: int | None = None,
        shopper_offset: int = 0,
        committed: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        flush_rows: int = DEFAULT_FLUSH_ROWS,
        flush_seconds: float = DEFAULT_FLUSH_SECONDS,
    ) -> None:
        self.store = store
        self.run_id = check_name(run_id, "run_id")
        self.policy = check_name(policy, "policy")
        if flush_rows < 1 or flush_seconds <= 0:
            raise ValueError(
                f"flush_rows must be at least 1 and flush_seconds positive; got {flush_rows}, {flush_seconds}"
            )
        self.n_shoppers, self.slate_size, self.n_items = int(n_shoppers), int(slate_size), n_items
        self.shopper_offset = int(shopper_offset)
        self.flush_rows, self.flush_seconds = int(flush_rows), float(flush_seconds)
        self._step = np.zeros(self.n_shoppers, np.int32)
        self._sessions_done = np.zeros(self.n_shoppers, np.int32)
        self._buffer: list[_Steps] = []
        self._buffered_steps = 0
        self._flush_at_steps = max(1, self.flush_rows // self.slate_size)
        self._last_flush = time.monotonic()
        self._positions = np.arange(self.slate_size, dtype=np.int16)
        self.stats = LoggerStats()
        self._committed_keys = np.zeros(0, np.int64)
        self._committed_rows = np.zeros(0, np.int64)
        self._committed_seen = 0
        if committed is not None and len(committed[0]):
            keys = session_keys(committed[0], committed[1])
            order = np.argsort(keys)
            self._committed_keys, self._committed_rows = keys[order], np.asarray(committed[2], np.int64)[order]

    def log_step(
        self, active: np.ndarray, items: np.ndarray, info: dict[str, np.ndarray], propensity: np.ndarray | None = None
    ) -> None:
        """Record one step: ``active`` (B,) the shoppers live *before* the step, ``items`` (B, k) the catalog ids
        shown, ``info`` the step's infos (``clicked_position``, ``purchased``, ``revenue``, ``session_ended``,
        ``returned``, ``churned``, ``day``), ``propensity`` (B, k) or (B,) probabilities when the policy knows them."""
        rows = np.flatnonzero(active)
        if rows.size == 0:
            return
        if propensity is not None:
            propensity = np.asarray(propensity, np.float64)
            if propensity.ndim == 1:
                propensity = np.broadcast_to(propensity[:, None], items.shape)
            propensity = propensity[rows]
        ended = info["session_ended"][rows]
        self._buffer.append(
            _Steps(
                slot=rows,
                day=info["day"][rows].astype(np.int32),
                session=self._sessions_done[rows],
                step=self._step[rows],
                clicked_position=info["clicked_position"][rows],
                purchased=info["purchased"][rows],
                revenue=info["revenue"][rows],
                returned=info["returned"][rows],
                churned=info["churned"][rows],
                ended=ended,
                items=items[rows],
                propensity=propensity,
            )
        )
        self._step[rows] += 1
        self._sessions_done[rows] += ended
        self._buffered_steps += rows.size
        if self._buffered_steps >= self._flush_at_steps or time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> int:
        """Commit the buffered complete sessions (one transaction); returns the impressions written."""
        self._last_flush = time.monotonic()
        if not self._buffer:
            return 0
        steps = _Steps.concat(self._buffer)
        self._buffer = [steps]  # until the write succeeds: a failed flush loses nothing
        complete = steps.session < self._sessions_done[steps.slot]
        keep = steps.take(np.flatnonzero(~complete))
        done = steps.take(np.flatnonzero(complete))
        written = 0
        if len(done):
            done = done.take(np.argsort(done.slot, kind="stable"))  # shopper, then step order
            skipped = self._skip_committed(done) if self._committed_keys.size else None
            if skipped is not None:
                done = skipped[0]
            if len(done):
                batch = self._batch(done)
                if self.n_items is not None:
                    check_item_ids(batch.columns["item_id"], self.n_items)
                started = time.perf_counter()
                self.store.write([batch])
                self.stats.write_seconds += time.perf_counter() - started
                self.stats.commits += 1
                written = len(batch)
                self.stats.impressions_written += written
                self.stats.sessions_written += int(done.ended.sum())
            if skipped is not None:
                self._count_skipped(*skipped[1:])
        self._buffer = [keep] if len(keep) else []
        self._buffered_steps = len(keep)
        # the next flush waits for flush_rows new impressions, even when long sessions stay open
        self._flush_at_steps = self._buffered_steps + max(1, self.flush_rows // self.slate_size)
        return written

    def _count_skipped(self, sessions: int, rows: int) -> None:
        self._committed_seen += sessions
        self.stats.sessions_skipped += sessions
        self.stats.impressions_skipped += rows

    def _skip_committed(self, done: _Steps) -> tuple[_Steps, int, int]:
        keys = session_keys(done.slot + self.shopper_offset, done.session)
        at = np.minimum(np.searchsorted(self._committed_keys, keys), self._committed_keys.size - 1)
        stored = self._committed_keys[at] == keys
        if stored.any():
            seen, counts = np.unique(keys[stored], return_counts=True)
            expected = self._committed_rows[np.searchsorted(self._committed_keys, seen)]
            if not np.array_equal(counts * self.slate_size, expected):
                bad = int(np.flatnonzero(counts * self.slate_size != expected)[0])
                shopper, session = divmod(int(seen[bad]), 1 << 31)
                raise RunMismatchError(
                    f"run {self.run_id!r} does not reproduce: shopper {shopper} session {session} has"
                    f" {int(expected[bad])} impressions stored but {int(counts[bad]) * self.slate_size} now."
                    f" A re-run must use the same policy (deterministic), seed, shoppers and config; use a new"
                    f" run_id for a different collection"
                )
            return done.take(np.flatnonzero(~stored)), int(seen.size), int(stored.sum()) * self.slate_size
        return done, 0, 0

    def _batch(self, done: _Steps) -> ImpressionBatch:
        n, k = len(done), self.slate_size
        clicked = done.clicked_position[:, None] == self._positions[None, :]
        columns = {
            "shopper": np.repeat(done.slot.astype(np.int64) + self.shopper_offset, k),
            "day": np.repeat(done.day, k),
            "session": np.repeat(done.session, k),
            "step": np.repeat(done.step, k),
            "position": np.tile(self._positions, n),
            "item_id": done.items.astype(np.int64, copy=False).ravel(),
            "clicked": clicked.ravel(),
            "purchased": (clicked & done.purchased[:, None]).ravel(),
            "revenue": np.where(clicked, done.revenue[:, None], 0.0).ravel(),
            "returned": np.repeat(done.returned, k),
            "churned": np.repeat(done.churned, k),
            "propensity": None if done.propensity is None else done.propensity.ravel(),
        }
        return ImpressionBatch(self.run_id, self.policy, columns)

    def close(self) -> LoggerStats:
        """Flush the complete sessions; open sessions (an interrupted cohort) are dropped, never half-written.
        Raises ``RunMismatchError`` when a re-run did not meet every session already stored."""
        self.flush()
        if self._committed_seen != self._committed_keys.size:
            raise RunMismatchError(
                f"run {self.run_id!r} does not reproduce: {self._committed_keys.size - self._committed_seen} of its"
                f" stored sessions did not occur in the re-run (same policy, seed, shoppers and config needed)"
            )
        return self.stats
