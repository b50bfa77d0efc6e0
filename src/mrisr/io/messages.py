"""Error text for the one-line ``mrisr: error: ...`` contract, and the warnings held back while a scan is read.

A reader may notice oddities (mrisr's own warnings such as "no sform/qform") before it finds that the
file is unreadable; nibabel, pydicom and numpy print warnings and log records of their own (nibabel and
pydicom attach stream handlers to their loggers, so those reach stderr directly). :func:`holding_warnings`
holds all of them back while a reader runs: when the read succeeds, mrisr's own records are emitted as
usual and the libraries' ones become INFO records of :data:`log` (shown with ``--debug``); when it fails,
only the error is reported (the held records, again only with ``--debug``). So a refused input gives exactly
one stderr line.
"""

from __future__ import annotations

import functools
import logging
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

log = logging.getLogger(__name__)

#: Loggers held while reading: mrisr's readers and the libraries that log (or attach handlers) themselves.
HELD_LOGGERS = ("mrisr.io", "nibabel", "nibabel.global", "pydicom", "PIL")

_HOLD_LOCK = threading.RLock()

P = ParamSpec("P")
R = TypeVar("R")


def one_line(exc: BaseException | str, limit: int = 300) -> str:
    """A library's exception message squeezed onto one line (whitespace collapsed, at most ``limit`` chars)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def held_warnings() -> Iterator[None]:
    """Hold warnings and the :data:`HELD_LOGGERS`' records until the block ends; emit them only on success.

    Nested blocks are fine: an inner block's records, emitted on success, are held by the outer one. Blocks
    in different threads run one at a time (loggers' handlers and the warnings filters are process-wide).
    """
    with _HOLD_LOCK:
        with _holding():
            yield


@contextmanager
def _holding() -> Iterator[None]:
    collector = _Collector()
    saved = []
    for name in HELD_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.handlers[:], logger.propagate))
        logger.handlers = [collector]
        logger.propagate = False
    ok = False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
        ok = True
    finally:
        for logger, handlers, propagate in saved:
            logger.handlers = handlers
            logger.propagate = propagate
        before = "" if ok else "(before the error) "
        for record in collector.records:
            if record.name == log.name or (ok and record.name.startswith("mrisr.")):
                logging.getLogger(record.name).handle(record)  # an inner block's replay, or mrisr's own
            else:
                log.info("%s%s: %s", before, record.name, record.getMessage())
        for w in caught:
            log.info("%s%s: %s", before, w.category.__name__, w.message)


def holding_warnings(func: Callable[P, R]) -> Callable[P, R]:
    """Decorator: run ``func`` inside :func:`held_warnings` (every public reader uses it)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with held_warnings():
            return func(*args, **kwargs)

    return wrapper
