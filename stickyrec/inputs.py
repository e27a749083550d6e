"""The one input layer: bounded YAML loading and bounded reprs for error messages.

Every YAML a user hands stickyrec (env configs, experiment configs, ``--set``/``--param`` values) goes through
``load_yaml``; every user value quoted in an error message goes through ``short_repr``; the CLI words any error
that reaches its top with ``error_line``; ``dump_yaml`` writes YAML that ``load_yaml`` reads back unchanged. The
loader is bounded, so a hostile input fails in milliseconds with a one-line ``ValueError`` naming its source:

- duplicate mapping keys are refused (YAML would silently keep the last one);
- aliases may expand to at most ``MAX_EXPANDED_NODES`` nodes (a 403-byte "billion laughs" is refused at once);
- nesting deeper than ``MAX_DEPTH`` levels is refused (no ``RecursionError``);
- files over ``MAX_FILE_BYTES`` (1 MB) are refused from their size, before they are read;
- python tags are refused (``yaml.SafeLoader``);
- numbers in exponent form without a dot (``1e9``, ``2E-3``) are floats, as in YAML 1.2 and JSON; YAML 1.1 reads
  them as strings. ``1.5e-3``, ``.inf`` and ``-.inf`` are floats as before.
"""

from __future__ import annotations

import math
import os
import re
import reprlib
import tempfile
from pathlib import Path
from typing import Any

import yaml

MAX_FILE_BYTES = 1_000_000
MAX_DEPTH = 50
MAX_EXPANDED_NODES = 100_000

_EXPONENT_FLOAT = re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")


class _BoundedRepr(reprlib.Repr):
    def repr_int(self, x, level):
        if x.bit_length() > 256:  # repr of a huge int costs time (and past 4300 digits raises)
            return f"<int of {x.bit_length()} bits>"
        return super().repr_int(x, level)

    def repr_instance(self, x, level):
        try:
            return super().repr_instance(x, level)
        except Exception:  # noqa: BLE001 - an error message must not fail on the value it quotes
            return f"<{type(x).__name__}>"


_REPR = _BoundedRepr()
_REPR.maxlevel = 3
_REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxfrozenset = _REPR.maxdeque = _REPR.maxarray = 6
_REPR.maxdict = 6
_REPR.maxstring = _REPR.maxlong = _REPR.maxother = 200


def short_repr(value: Any, limit: int = 80) -> str:
    """``repr(value)`` for small values; for big or self-referencing ones a truncated repr of at most ``limit``
    characters, built from a bounded walk (a few levels, a few elements each) rather than the whole structure."""
    text = _REPR.repr(value)
    if len(text) > limit:
        text = text[: max(limit - 3, 1)] + "..."
    return text


class _BoundedLoader(yaml.SafeLoader):
    """``SafeLoader`` with the bounds above; raises ``yaml.YAMLError`` subclasses that ``load_yaml`` words."""

    def __init__(self, stream) -> None:
        super().__init__(stream)
        self._depth = 0

    def fetch_flow_collection_start(self, token_class):
        if self.flow_level >= MAX_DEPTH:  # refused while scanning: the scanner's cost grows with the flow depth
            raise yaml.scanner.ScannerError(None, None, f"nesting deeper than {MAX_DEPTH} levels", self.get_mark())
        super().fetch_flow_collection_start(token_class)

    def add_indent(self, column):
        if len(self.indents) >= MAX_DEPTH:
            raise yaml.scanner.ScannerError(None, None, f"nesting deeper than {MAX_DEPTH} levels", self.get_mark())
        return super().add_indent(column)

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nesting deeper than {MAX_DEPTH} levels", self.peek_event().start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self):
        node = super().compose_document()
        _check_expansion(node)
        return node

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    hash(key)
                except TypeError:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"a key may not be a {type(key).__name__}", key_node.start_mark
                    ) from None
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"duplicate key {short_repr(key)} (first at line {seen[key] + 1})",
                        key_node.start_mark,
                    )
                seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


_BoundedLoader.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT_FLOAT, list("-+0123456789"))


class _Dumper(yaml.SafeDumper):
    """``SafeDumper`` that knows ``1e9`` is a number, so it quotes the string ``'1e9'`` and ``load_yaml`` reads it
    back as the string it was."""


_Dumper.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT_FLOAT, list("-+0123456789"))


def dump_yaml(data: Any, **options: Any) -> str:
    """``yaml.safe_dump`` whose output ``load_yaml`` reads back as the same data (options as for ``safe_dump``)."""
    return yaml.dump(data, Dumper=_Dumper, **options)


def _check_expansion(root) -> None:
    """Count the nodes the document expands to (aliases counted at every use), stopping past the bound."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()  # expanded, not yet counted: meeting one again below itself is a cycle
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in sizes:
            continue
        children = _children(node)
        if not done and children:
            if id(node) in open_nodes:
                raise yaml.composer.ComposerError(None, None, "an alias refers to itself", node.start_mark)
            open_nodes.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)
            continue
        size = 1 + sum(sizes.get(id(child), 1) for child in children)
        if size > MAX_EXPANDED_NODES:
            raise yaml.composer.ComposerError(
                None, None, f"aliases expand to more than {MAX_EXPANDED_NODES:,} nodes", node.start_mark
            )
        sizes[id(node)] = size


def _children(node) -> list:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _describe(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError):
        problem = " ".join(p for p in (exc.context, exc.problem) if p) or "error"
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        return " ".join(problem.split()) + where
    return " ".join(str(exc).split())[:200]


def load_yaml(text_or_path: str | os.PathLike, *, source: str) -> Any:
    """Parse YAML text, or the file at a ``Path``, with the bounds above. ``source`` names the input in errors
    (e.g. ``"config file 'x.yaml'"`` or ``"--set seeds"``); every refusal is one line: ``SOURCE is not valid YAML:
    PROBLEM (line L, column C)`` or ``SOURCE is larger than 1 MB``."""
    if isinstance(text_or_path, (Path, os.PathLike)):
        path = Path(text_or_path)
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                raise ValueError(f"{source} is larger than {MAX_FILE_BYTES // 1_000_000} MB; allowed: up to 1 MB")
            with path.open("rb") as handle:
                data = handle.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise ValueError(f"{source} cannot be read: {exc.strerror or exc}") from None
        if len(data) > MAX_FILE_BYTES:
            raise ValueError(f"{source} is larger than {MAX_FILE_BYTES // 1_000_000} MB; allowed: up to 1 MB")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{source} is not valid YAML: not UTF-8 text (byte {exc.start})") from None
    else:
        text = str(text_or_path)
        if len(text) > MAX_FILE_BYTES:
            raise ValueError(f"{source} is larger than {MAX_FILE_BYTES // 1_000_000} MB; allowed: up to 1 MB")
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        raise ValueError(f"{source} is not valid YAML: {_describe(exc)}") from None
    except RecursionError:
        raise ValueError(f"{source} is not valid YAML: nested too deeply") from None
    finally:
        loader.dispose()


def error_line(exc: BaseException) -> str:
    """One line for any error that reached the top: a ValueError's own text, otherwise what went wrong and where."""
    if isinstance(exc, ValueError):
        return str(exc)
    if isinstance(exc, OSError):
        where = " -> ".join(repr(str(name)) for name in (exc.filename, exc.filename2) if name is not None)
        what = exc.strerror or " ".join(str(exc).split())[:300] or type(exc).__name__
        return f"{where + ': ' if where else ''}{what}"
    if isinstance(exc, RecursionError):
        return "an input is nested too deeply"
    if isinstance(exc, MemoryError):
        return "out of memory"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def integral(value: Any) -> Any:
    """``value`` as an ``int`` when it is a finite float with no fractional part (``1e9``, ``3.0``), else unchanged:
    where a field wants an integer, YAML's ``1e3`` is accepted and ``1.5`` is still refused by the field's check."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    return value


OUTPUT_KINDS = ("dir", "file")


def check_output_path(path: str | os.PathLike | None, kind: str = "dir", what: str = "--out") -> Path:
    """``path`` checked as somewhere stickyrec may write, before any work: ``kind="dir"`` a folder (existing, or
    creatable), ``kind="file"`` a file (existing, or creatable in a folder that exists or can be made). A file where a
    folder is wanted (or the reverse), an ancestor that is a file, or a folder that cannot be written is a one-line
    ``ValueError`` naming ``what``. Nothing is created: writability is probed with a temporary file that is removed
    at once (it counts what the operating system allows, root and read-only mounts included)."""
    if kind not in OUTPUT_KINDS:
        raise ValueError(f"kind {kind!r} is unknown; allowed: {', '.join(OUTPUT_KINDS)}")
    if path is None or not os.fspath(path).strip():
        raise ValueError(f"{what} is empty; allowed: a {'folder' if kind == 'dir' else 'file'} path")
    path = Path(path)
    shown = short_repr(str(path), 160)
    if path.exists():
        if kind == "dir" and not path.is_dir():
            raise ValueError(f"{what} {shown} is a file; allowed: a folder (existing or new)")
        if kind == "file" and path.is_dir():
            raise ValueError(f"{what} {shown} is a folder; allowed: a file path")
    folder = path if kind == "dir" else path.parent
    existing = folder
    while not existing.exists() and existing != existing.parent:  # the nearest ancestor that exists
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{what} {shown} cannot be created: {short_repr(str(existing), 160)} is a file, not a folder")
    try:  # a real probe: os.access says yes to root on read-only mounts and on /proc
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".stickyrec-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ValueError(
            f"{what} {shown} is not writable: {short_repr(str(existing), 160)}: {exc.strerror or exc}"
        ) from None
    return path


__all__ = [
    "CONNECT_TIMEOUT_ARGS",
    "MAX_DEPTH",
    "MAX_EXPANDED_NODES",
    "MAX_FILE_BYTES",
    "OUTPUT_KINDS",
    "check_output_path",
    "dump_yaml",
    "error_line",
    "integral",
    "load_yaml",
    "short_repr",
]


# The connect-timeout keyword of each DBAPI driver SQLAlchemy may pick for a URL (database URLs are user input:
# the platform's SQL store and the calibration's log reader both connect with it, so both timeouts hold).
CONNECT_TIMEOUT_ARGS = {
    "pymysql": "connect_timeout",
    "mysqldb": "connect_timeout",
    "mariadbconnector": "connect_timeout",
    "mysqlconnector": "connection_timeout",
    "psycopg": "connect_timeout",
    "psycopg2": "connect_timeout",
    "pg8000": "timeout",
}
