"""Atomic, non-clobbering output: write to a temporary sibling, then rename into place."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from mrisr.errors import OutputExistsError


def check_output(path: str | os.PathLike[str], force: bool) -> Path:
    """Refuse an existing output unless ``force``; return the path as :class:`Path`."""
    p = Path(path)
    if p.exists() and not force:
        raise OutputExistsError(f"{p} already exists (use --force to overwrite)")
    return p


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], force: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

    Works for files and for folders (a DICOM series). The temporary keeps the final suffixes so that
    writers choosing a format by extension (``.nii.gz``) behave. On error the temporary is removed and
    nothing is left at ``path``.
    """
    final = check_output(path, force)
    final.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(final.suffixes)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=f".tmp{suffix}", dir=final.parent)
    os.close(fd)
    os.unlink(tmp_name)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if final.is_dir() and not final.is_symlink():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()
        raise


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object], force: bool = False) -> Path:
    """Call ``write(tmp_path)`` and move the result onto ``path`` atomically. Returns ``path``."""
    with atomic_path(path, force=force) as tmp:
        write(tmp)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str, force: bool = False) -> Path:
    """Write a text file atomically."""
    return atomic_write(path, lambda p: p.write_text(text), force=force)
