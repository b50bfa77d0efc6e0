"""mrisr.io.messages: one-line errors and the warnings held while a reader runs."""

from __future__ import annotations

import logging
import threading
import warnings

import pytest

from mrisr.errors import InputError
from mrisr.io.messages import HELD_LOGGERS, held_warnings, one_line

READER = logging.getLogger("mrisr.io.nifti")


def _handlers() -> dict[str, tuple[list[logging.Handler], bool]]:
    return {name: (logging.getLogger(name).handlers[:], logging.getLogger(name).propagate) for name in HELD_LOGGERS}


def test_one_line_squeezes_and_limits():
    assert one_line(ValueError("a\n  b\tc")) == "a b c"
    assert one_line("x" * 400, limit=10) == "xxxxxxx..."
    assert one_line(ValueError()) == "ValueError"


def test_success_emits_mrisr_warnings_and_demotes_library_ones(caplog):
    with caplog.at_level(logging.INFO), held_warnings():
        READER.warning("no sform")
        logging.getLogger("nibabel.global").warning("pixdim fixed")
        warnings.warn("overflow", RuntimeWarning, stacklevel=1)
        assert not caplog.records  # held while the block runs
    levels = {r.getMessage(): r.levelno for r in caplog.records}
    assert levels["no sform"] == logging.WARNING
    assert levels["nibabel.global: pixdim fixed"] == logging.INFO
    assert levels["RuntimeWarning: overflow"] == logging.INFO


def test_failure_prints_no_warning_before_the_error(caplog):
    before = _handlers()
    with caplog.at_level(logging.INFO), pytest.raises(InputError), held_warnings():
        READER.warning("no sform")
        raise InputError("too many voxels")
    assert [r.levelno for r in caplog.records] == [logging.INFO]
    assert caplog.records[0].getMessage() == "(before the error) mrisr.io.nifti: no sform"
    assert _handlers() == before


def test_nested_and_threaded_blocks_restore_the_loggers(caplog):
    before = _handlers()

    def read() -> None:
        with held_warnings(), held_warnings():
            READER.warning("from a thread")

    threads = [threading.Thread(target=read) for _ in range(4)]
    with caplog.at_level(logging.WARNING):
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert _handlers() == before
    assert [r.getMessage() for r in caplog.records] == ["from a thread"] * 4
