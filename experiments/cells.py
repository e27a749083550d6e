"""The names and the integrity of a run directory's cells, shared by the runner (which writes them) and the report
(which reads them).

A cell is one (scenario, agent label, seed) of the grid: ``cells/SCENARIO__LABEL__sSEED/``, done once its
``cell.json`` exists (written last, atomically); a data cell (``data/SCENARIO__sSEED/``) is done once its
``done.json`` exists. Both markers are sealed (``seal``) with:

- ``config_sha256``: the hash of the resolved run config that produced the cell (``config_hash``), so a run never
  reuses a cell of another config, even when ``config.yaml`` was deleted or edited;
- ``files_sha256``: the sha256 of each result file beside it (Parquet), so a changed byte is found before a report;
- ``record_sha256``: the hash of the marker's own content.

``read_marker`` checks all three and raises a one-line ``ValueError`` naming the file that is damaged or foreign.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

CELL_MARKER = "cell.json"
DATA_MARKER = "done.json"
SEAL_KEYS = ("config_sha256", "files_sha256", "record_sha256")


def cell_name(scenario: str, label: str, seed: int) -> str:
    return f"{scenario}__{label}__s{seed}"


def _canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str).encode()


def config_hash(resolved: dict) -> str:
    """The sha256 of a resolved run config (as written to, and read back from, ``config.yaml``)."""
    return hashlib.sha256(_canonical(resolved)).hexdigest()


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def seal(record: dict, folder: Path, config_sha256: str, files: tuple[str, ...]) -> dict:
    """``record`` with its seal: the config hash, each of ``files``' hash (those present in ``folder``), its own."""
    present = [name for name in files if (folder / name).exists()]
    sealed = {**record, "config_sha256": config_sha256, "files_sha256": {n: file_hash(folder / n) for n in present}}
    return {**sealed, "record_sha256": hashlib.sha256(_canonical(sealed)).hexdigest()}


def read_marker(marker: Path, config_sha256: str | None = None, check_files: bool = True) -> dict:
    """A cell's (or data cell's) marker after its checks (module docstring); ``config_sha256`` None skips the config
    check. Every refusal names the file and says how to recover."""
    folder = marker.parent
    redo = f"delete {folder} and re-run the same command to recompute it"
    try:
        record = json.loads(marker.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or " ".join(str(exc).split())[:120]
        raise ValueError(f"{marker} is damaged (not readable JSON: {reason}); {redo}") from None
    if not isinstance(record, dict) or not all(key in record for key in SEAL_KEYS):
        raise ValueError(
            f"{marker} is not a sealed stickyrec cell record (damaged, or made before cells had hashes); {redo}"
        )
    body = {key: value for key, value in record.items() if key != "record_sha256"}
    if hashlib.sha256(_canonical(body)).hexdigest() != record["record_sha256"]:
        raise ValueError(f"{marker} is damaged: its content does not match its record hash; {redo}")
    if config_sha256 is not None and record["config_sha256"] != config_sha256:
        raise ValueError(
            f"{folder} was computed from another config (config hash {str(record['config_sha256'])[:12]}, this run's"
            f" {config_sha256[:12]}); choose another --out, or delete {folder} to recompute it with this config"
        )
    files = record["files_sha256"]
    for name, digest in files.items() if check_files and isinstance(files, dict) else ():
        path = folder / Path(name).name
        try:
            actual = file_hash(path)
        except OSError as exc:
            raise ValueError(f"{path} cannot be read ({exc.strerror or exc}); {redo}") from None
        if actual != digest:
            raise ValueError(f"{path} is damaged: its content does not match the sha256 in {marker}; {redo}")
    return record


__all__ = [
    "CELL_MARKER",
    "DATA_MARKER",
    "SEAL_KEYS",
    "cell_name",
    "config_hash",
    "file_hash",
    "read_marker",
    "seal",
]
