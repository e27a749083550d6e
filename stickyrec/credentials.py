"""Database URLs from users: a store target told from a file path, passwords from outside the command line, and
passwords masked in every message. The one place for both the impression store (``experiments.platform_log``)
and the calibration's log reader (``experiments.calibration.sources``).

- ``store_target(text)``: ``("url", text)`` for ``SCHEME://...`` with a scheme SQLAlchemy knows, ``("duckdb", path)``
  for ``:memory:``, ``duckdb:///PATH``, a path ending in ``.duckdb`` or an existing DuckDB file (told by its magic
  bytes); anything else (an empty string, a CSV or Parquet file, a folder, a malformed URL such as
  ``mysql+pymysql//u:PW@host/db``) is a ``ValueError`` that shows the text with its password masked. A malformed URL
  is never taken as a path, so no folder is ever named after a credential.
- ``parse_url(text)``: a SQLAlchemy ``URL``. The userinfo ends at the *last* ``@`` of the URL, so a password may hold
  a raw ``@`` (or ``:``, ``/``, ``%``-escapes); with a user and no password, the password comes from the environment
  variable ``STICKYREC_DB_PASSWORD``, else from the file named by ``STICKYREC_DB_PASSFILE`` (lines
  ``host:port:database:user:password`` as in PostgreSQL's ``.pgpass``: ``*`` matches anything, ``\\:`` and ``\\\\``
  escape, ``#`` starts a comment; the first matching line wins; a URL without a port matches any port).
- ``mask_secrets(text, secrets)``: ``text`` with the given secrets, and the userinfo password of anything shaped like
  a URL (``scheme://user:PW@host``, ``scheme:user:PW@host``, ``x//user:PW@host``), replaced by ``***``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote, unquote

PASSWORD_ENV = "STICKYREC_DB_PASSWORD"
PASSFILE_ENV = "STICKYREC_DB_PASSFILE"
DUCKDB_SUFFIX = ".duckdb"
DUCKDB_MAGIC = b"DUCK"  # bytes 8..12 of a DuckDB database file
ALLOWED_STORES = (
    "a database URL with a scheme SQLAlchemy knows (e.g. mysql+pymysql://user@host/db, postgresql+psycopg://...,"
    " sqlite:///file.sqlite) or a DuckDB file (a path ending in .duckdb, or an existing DuckDB database)"
)

_ALLOWED = f"allowed: {ALLOWED_STORES}"
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
_SCHEME_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]+:/*")  # two characters at least: not a drive letter
_QUERY_PASSWORD = re.compile(r"(?i)((?:^|[?&;\s])(?:password|passwd|pwd)=)[^&;\s'\"]*")
_TOKEN_WITH_AT = re.compile(r"[^\s'\"<>()\[\]]*@[^\s'\"<>()\[\]]*")


def _mask_token(match: re.Match) -> str:
    token = match.group(0)
    at = token.rfind("@")
    userinfo = token[:at]
    if "://" in userinfo:
        prefix, _, rest = userinfo.partition("://")
        prefix += "://"
    else:
        found = _SCHEME_PREFIX.match(userinfo)
        prefix, rest = (found.group(0), userinfo[found.end() :]) if found else ("", userinfo)
    if ":" not in rest:
        return token  # a user name alone (or an e-mail address): nothing secret
    user = rest.partition(":")[0]
    return f"{prefix}{user}:***@{token[at + 1 :]}"


def mask_secrets(text: object, secrets: Iterable[str | None] = ()) -> str:
    """``str(text)`` with each of ``secrets`` (raw and %-encoded), every URL-shaped password and every
    ``password=``/``passwd=``/``pwd=`` query value replaced by ``***``."""
    text = str(text)
    for secret in secrets:
        if secret:
            for form in {secret, quote(secret, safe=""), quote(secret)}:
                text = text.replace(form, "***")
    text = _QUERY_PASSWORD.sub(r"\1***", text)
    return _TOKEN_WITH_AT.sub(_mask_token, text)


def _split(text: str) -> tuple[str, str | None, str | None, str]:
    """(scheme, user, password, host part) of ``SCHEME://[USER[:PASSWORD]@]HOSTPART``, split at the last ``@``."""
    scheme, _, rest = text.partition("://")
    at = rest.rfind("@")
    if at < 0:
        return scheme, None, None, rest
    user, colon, password = rest[:at].partition(":")
    return scheme, unquote(user), unquote(password) if colon else None, rest[at + 1 :]


def _passfile_fields(line: str) -> list[str]:
    fields, current, chars = [], [], iter(line)
    for char in chars:
        if char == "\\":
            current.append(next(chars, ""))
        elif char == ":" and len(fields) < 4:
            fields.append("".join(current))
            current = []
        else:
            current.append(char)
    return [*fields, "".join(current)]


def password_from_environment(host: str | None, port: int | None, database: str | None, user: str) -> str | None:
    """The password for ``user`` from ``STICKYREC_DB_PASSWORD``, else the first matching line of the file named by
    ``STICKYREC_DB_PASSFILE``; None when neither gives one. An unreadable password file is a ``ValueError``."""
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    passfile = os.environ.get(PASSFILE_ENV)
    if not passfile:
        return None
    try:
        lines = Path(passfile).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{PASSFILE_ENV} names {passfile!r}, which cannot be read: {exc}") from None
    wanted = (host or "", None if port is None else str(port), database or "", user)
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = _passfile_fields(line)
        if len(fields) == 5 and all(f == "*" or w is None or f == w for f, w in zip(fields[:4], wanted)):
            return fields[4]
    return None


def parse_url(text: str):
    """A SQLAlchemy ``URL`` for ``text`` (password filled from the environment when absent); ``ValueError``, with the
    password masked, when ``text`` is not a URL SQLAlchemy can parse."""
    import sqlalchemy as sa

    scheme, user, password, hostpart = _split(text)
    if not _SCHEME.fullmatch(scheme) or "://" not in text:
        raise ValueError(f"not a valid database URL: {mask_secrets(text, [password])}; allowed: {ALLOWED_STORES}")
    try:
        url = sa.engine.make_url(f"{scheme}://{hostpart}")
    except Exception as exc:  # noqa: BLE001 - any parse failure: said without the password
        reason = mask_secrets(exc, [password])
        raise ValueError(f"not a valid database URL: {mask_secrets(text, [password])} ({reason})") from None
    if user:
        if password is None:
            password = password_from_environment(url.host, url.port, url.database, user)
        url = url.set(username=user, password=password)
    return url


def url_password(url) -> str | None:
    return url.password if isinstance(url.password, str) else None


def shown_url(url) -> str:
    """A parsed URL for messages: its password hidden (also one given as a query parameter)."""
    return mask_secrets(url.render_as_string(hide_password=True), [url_password(url)])


# Drivers whose handshake can hang after the socket connects (a server, proxy or firewall that accepts and stalls):
# the probe connection also bounds its reads, so a server that does not answer fails within about the timeout.
PROBE_READ_TIMEOUT_ARGS = {"pymysql": "read_timeout", "mysqldb": "read_timeout"}


def connect_engine(url, connect_timeout: float = 5.0, **engine_options):
    """A SQLAlchemy engine for a parsed ``url`` after one probe connection (``SELECT 1``) that fails within about
    ``connect_timeout`` seconds (at least 1) on a closed port, an unroutable host or a server that accepts and says
    nothing. ``ValueError`` with the password masked: a missing driver, a refused or timed-out connection."""
    import math

    import sqlalchemy as sa

    from stickyrec.inputs import CONNECT_TIMEOUT_ARGS

    seconds = max(1, math.ceil(connect_timeout))
    driver, password, shown = url.get_driver_name(), url_password(url), shown_url(url)
    connect_args = {CONNECT_TIMEOUT_ARGS[driver]: seconds} if driver in CONNECT_TIMEOUT_ARGS else {}
    probe_args = {PROBE_READ_TIMEOUT_ARGS[driver]: seconds} if driver in PROBE_READ_TIMEOUT_ARGS else {}
    try:
        probe = sa.create_engine(url, connect_args={**connect_args, **probe_args}, poolclass=sa.pool.NullPool)
        engine = sa.create_engine(url, connect_args=connect_args, hide_parameters=True, **engine_options)
    except (ImportError, sa.exc.NoSuchModuleError, sa.exc.ArgumentError) as exc:
        raise ValueError(
            f"cannot use {shown}: {mask_secrets(exc, [password])} (is its database driver installed? e.g. pip install"
            " pymysql, or psycopg)"
        ) from None
    try:
        with probe.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except sa.exc.SQLAlchemyError as exc:
        engine.dispose()
        reason = mask_secrets(getattr(exc, "orig", None) or exc, [password]).splitlines()[0][:400]
        raise ValueError(f"cannot connect to {shown} (timeout {seconds} s): {reason}") from None
    finally:
        probe.dispose()
    return engine


def _is_duckdb_file(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(12)[8:12] == DUCKDB_MAGIC
    except OSError:
        return False


def store_target(store: str | os.PathLike) -> tuple[str, str]:
    """``("url", text)`` or ``("duckdb", path)`` for a ``--store`` value, or a ``ValueError`` (module docstring)."""
    text = os.fspath(store)
    if not text.strip():
        raise ValueError(f"--store is empty; allowed: {ALLOWED_STORES}")
    if text == ":memory:":
        return "duckdb", text
    if text.startswith("duckdb:///"):
        text = text[len("duckdb:///") :]
    elif "://" in text:
        url = parse_url(text)
        try:
            url.get_dialect()
        except Exception:  # noqa: BLE001 - NoSuchModuleError, or a dialect that fails to import
            raise ValueError(
                f"--store {shown_url(url)}: SQLAlchemy knows no database {url.drivername!r}; allowed: {ALLOWED_STORES}"
            ) from None
        return "url", str(text)
    masked = mask_secrets(text)
    if _SCHEME_PREFIX.match(text) or masked != text:
        raise ValueError(f"--store {masked} is a malformed database URL (want SCHEME://USER@HOST/DB); {_ALLOWED}")
    path = Path(text)
    if path.is_dir():
        raise ValueError(f"--store {text!r} is a folder; allowed: {ALLOWED_STORES}")
    if path.is_file() and not _is_duckdb_file(path):
        if path.stat().st_size > 0 or path.suffix != DUCKDB_SUFFIX:
            raise ValueError(f"--store {text!r} is an existing file that is not a DuckDB database; {_ALLOWED}")
    elif not path.is_file() and path.suffix != DUCKDB_SUFFIX:
        raise ValueError(f"--store {text!r} is neither a database URL nor a .duckdb path; allowed: {ALLOWED_STORES}")
    return "duckdb", text


__all__ = [
    "ALLOWED_STORES",
    "PROBE_READ_TIMEOUT_ARGS",
    "connect_engine",
    "PASSFILE_ENV",
    "PASSWORD_ENV",
    "mask_secrets",
    "parse_url",
    "password_from_environment",
    "shown_url",
    "store_target",
    "url_password",
]
