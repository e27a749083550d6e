"""Atomic file writes, shared by every layer: write to a temporary file in the same folder, then rename over it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """``data`` lands in ``path`` whole or not at all (a kill mid-write leaves the old file or none)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            os.fchmod(handle.fileno(), 0o666 & ~_umask())  # mkstemp makes 0600; results are for sharing
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | Path, payload: Any) -> None:
    write_bytes_atomic(path, (json.dumps(payload, indent=2, sort_keys=False) + "\n").encode())


def write_parquet_atomic(frame, path: str | Path, **options) -> None:
    """A pandas frame as Parquet (no index), atomically; ``options`` go to ``DataFrame.to_parquet``."""
    import io

    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False, **options)
    write_bytes_atomic(path, buffer.getvalue())


@contextlib.contextmanager
def staged_directory(final: str | Path):
    """A folder whose files appear at ``final`` all together or not at all.

    Yields a temporary sibling folder to write into; on success it replaces ``final`` (a previous folder there is
    moved aside, then removed), on any error it is removed and ``final`` is left as it was.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp"))
    try:
        yield stage
        os.chmod(stage, 0o777 & ~_umask())
        old = None
        if final.exists():
            old = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".old"))
            os.replace(final, old / "previous")
        os.replace(stage, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
