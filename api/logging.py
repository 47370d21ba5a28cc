"""Structured JSON logs. Only ids and technical facts: never a body, a query string or a name.

This holds by construction rather than by care at each call site:

* log messages are constant strings with ids in ``extra``;
* exceptions are rendered as their class, SQLSTATE and stack frames, **never their text**: a
  database error's text quotes the values it refused (``invalid input … 'Dupont'``, ``Key
  (email)=(…) already exists``), and any library may do the same;
* the HTTP client and server libraries that log URLs with query strings are kept quiet.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from contextvars import ContextVar
from datetime import UTC, datetime
from types import TracebackType

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

# Attributes of a LogRecord that are not user-supplied "extra" fields.
_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

#: libraries whose INFO lines print full URLs (query strings may hold names)
_URL_LOGGERS = ("httpx", "httpcore", "uvicorn.access")


def describe_exception(error: BaseException, tb: TracebackType | None = None) -> str:
    """An exception chain as class names, SQLSTATEs and frames, without any message text."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        frames = traceback.extract_tb(tb if current is error and tb else current.__traceback__)
        lines = [f"  {f.filename}:{f.lineno} in {f.name}" for f in frames]
        name = f"{type(current).__module__}.{type(current).__qualname__}"
        sqlstate = getattr(current, "sqlstate", None) or getattr(
            getattr(current, "orig", None), "sqlstate", None
        )
        parts.append("\n".join([name + (f" (SQLSTATE {sqlstate})" if sqlstate else ""), *lines]))
        current = current.__cause__ or current.__context__
    return "\ncaused by ".join(parts)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": request_id_var.get(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _RESERVED})
        if record.exc_info and record.exc_info[1] is not None:
            entry["exception"] = describe_exception(record.exc_info[1], record.exc_info[2])
        return json.dumps(entry, default=str)


def quiet_url_loggers() -> None:
    """Silence the INFO lines that print request URLs (ours log the route template)."""
    for name in _URL_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").disabled = True


def configure_logging(level: str = "INFO") -> None:
    # A handler that fails (a closed stream, a full disk) must not fall back on printing the
    # record's raw message and arguments to stderr, which is what logging does by default:
    # they may quote a person, where our formatter would not
    logging.raiseExceptions = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    quiet_url_loggers()
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
