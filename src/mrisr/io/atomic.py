"""Atomic, non-clobbering output: write to a temporary sibling, then rename into place."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import FrameType

from mrisr.errors import MrisrError, OutputExistsError

#: Failures of the output medium (not of mrisr): reported as one line.
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EFBIG, errno.EACCES, errno.EPERM}


def _is_dicom_file(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def _check_replaceable_folder(folder: Path) -> None:
    """``--force`` may replace a folder only when it is empty or holds nothing but DICOM files.

    A DICOM series folder is the only folder mrisr writes; anything else in it (notes, sub-folders, a
    home directory given by mistake) is the user's, and deleting it is never what ``--force`` means.
    """
    try:
        entries = list(folder.iterdir())
    except OSError as exc:
        raise OutputExistsError(f"{folder} exists and cannot be listed ({exc.strerror}); not replacing it") from None
    foreign = [e for e in entries if e.is_symlink() or not e.is_file() or not _is_dicom_file(e)]
    if foreign:
        shown = ", ".join(sorted(e.name for e in foreign)[:3]) + (", ..." if len(foreign) > 3 else "")
        raise OutputExistsError(
            f"{folder} is a folder holding {len(foreign)} item(s) that are not DICOM files ({shown}); "
            "--force only replaces an empty folder or a DICOM series, choose another output path"
        )


def check_not_input(output: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str] | None]) -> None:
    """Refuse an output that would overwrite one of the ``inputs`` (``None`` entries are ignored).

    The output may not be an input (also through a symlink or a hard link), lie inside an input folder (a
    DICOM series being read), or be a folder holding an input (``--force`` would replace it).

    Raises:
        MrisrError: one line naming both paths.
    """
    out = Path(os.path.abspath(os.fspath(output).rstrip("/\\") or os.sep)).resolve()
    for given in inputs:
        if given is None:
            continue
        src = Path(os.path.abspath(given)).resolve()
        same = out == src or (out.exists() and src.exists() and os.path.samefile(out, src))
        if same or src in out.parents or out in src.parents:
            how = "is" if same else ("lies inside" if src in out.parents else "is a folder holding")
            raise MrisrError(f"output {output} {how} the input {given}; choose another output path "
                             "(an input is never overwritten, not even with --force)")


def check_output(path: str | os.PathLike[str], force: bool) -> Path:
    """Refuse an existing output unless ``force``; return the path as :class:`Path`.

    With ``force`` an existing folder is accepted only if it is empty or holds only DICOM files.
    """
    p = Path(path)
    if p.exists() or p.is_symlink():
        if not force:
            raise OutputExistsError(f"{p} already exists (use --force to overwrite)")
        if p.is_dir() and not p.is_symlink():
            _check_replaceable_folder(p)
    return p


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0  # another user's process (or an absurd number: not ours to judge)
    return True


def remove_stale_temporaries(final: Path) -> list[Path]:
    """Remove the temporaries that killed writers of ``final`` left beside it; returns what was removed.

    A temporary is ``.NAME.PID-XXXX.tmpSUFFIX`` (files or folders); it is stale when process ``PID`` no
    longer runs (temporaries of a writer still running, e.g. a second mrisr writing the same output, are
    left alone). Names without a PID are from mrisr versions before PIDs were recorded and are stale too.
    """
    pattern = re.compile(rf"\.{re.escape(final.name)}\.(?:(\d+)-)?[A-Za-z0-9_]+\.tmp{re.escape(''.join(final.suffixes))}")
    removed: list[Path] = []
    try:
        entries = list(final.parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        m = pattern.fullmatch(entry.name)
        if m is None or (m.group(1) is not None and (int(m.group(1)) == os.getpid() or _pid_alive(int(m.group(1))))):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
        removed.append(entry)
    return removed


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into ``SystemExit(143)`` while a temporary exists, so that it is cleaned up.

    Only in the main thread and only when nobody else handles SIGTERM (the default action would kill
    the process without running ``finally`` blocks and leave a half-written temporary behind).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    try:
        previous = signal.getsignal(signal.SIGTERM)
    except (ValueError, AttributeError):  # pragma: no cover - platforms without SIGTERM
        yield
        return
    if previous is not signal.SIG_DFL:
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


_UMASK_LOCK = threading.Lock()


def default_file_mode() -> int:
    """The mode ``open()`` gives a new file under the process's umask (``0o666 & ~umask``)."""
    with _UMASK_LOCK:  # reading the umask means setting it; no other thread may see the temporary value
        mask = os.umask(0o077)
        os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], force: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

    Works for files and for folders (a DICOM series). The temporary keeps the final suffixes so that
    writers choosing a format by extension (``.nii.gz``) behave. On error, Ctrl-C or SIGTERM the
    temporary is removed and nothing is left at ``path``. A SIGKILL may leave a hidden
    ``.NAME.PID-XXXX.tmpSUFFIX``; the next write of the same ``path`` removes it
    (:func:`remove_stale_temporaries`).
    """
    final = check_output(path, force)
    suffix = "".join(final.suffixes)
    with _sigterm_raises():
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(final)
            fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.{os.getpid()}-", suffix=f".tmp{suffix}",
                                            dir=final.parent)
        except OSError as exc:
            raise MrisrError(f"cannot write {final}: cannot create a file in {final.parent} "
                             f"({exc.strerror or exc})") from None
        os.close(fd)
        os.unlink(tmp_name)
        tmp = Path(tmp_name)
        try:
            yield tmp
            if tmp.is_file() and not tmp.is_symlink():
                # some writers (safetensors) create their file 0600; an output gets the umask's usual mode
                os.chmod(tmp, default_file_mode())
            if final.is_dir() and not final.is_symlink():
                _check_replaceable_folder(final)
                shutil.rmtree(final)
            os.replace(tmp, final)
        except BaseException as exc:
            if tmp.is_dir() and not tmp.is_symlink():
                shutil.rmtree(tmp, ignore_errors=True)
            elif tmp.exists() or tmp.is_symlink():
                tmp.unlink()
            if isinstance(exc, OSError) and exc.errno in _WRITE_ERRNOS:
                # disk full, quota, read-only file system... while writing the output: one line, nothing left
                raise MrisrError(f"cannot write {final}: {exc.strerror or exc}") from None
            raise


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object], force: bool = False) -> Path:
    """Call ``write(tmp_path)`` and move the result onto ``path`` atomically. Returns ``path``."""
    with atomic_path(path, force=force) as tmp:
        write(tmp)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str, force: bool = False) -> Path:
    """Write a text file atomically."""
    return atomic_write(path, lambda p: p.write_text(text), force=force)
