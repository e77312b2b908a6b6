"""Write files all at once: a temporary file in the same folder, fsync, then a rename.

Only a regular file (or a missing one) is replaced that way. A character device
(``/dev/null``, ``/dev/full``, a terminal), a FIFO, a socket or a link to one
(``/proc/self/fd/1``) is written through, as ``open(path, "w")`` would; a symbolic link
to a regular file keeps the link and atomically replaces the file it points to.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import tempfile
import threading
from pathlib import Path

__all__ = ["atomic_write"]


def atomic_write(path: str | os.PathLike, data: bytes | str) -> None:
    """Write ``data`` to ``path`` all at once: a temporary file in the same folder, fsync,
    then :func:`os.replace`. An error, Ctrl-C or SIGTERM part way leaves the old file
    intact and no temporary file behind. Text is written as UTF-8. Devices, FIFOs and
    links to them are written through (see the module docstring).

    Parameters
    ----------
    path : str or path-like
    data : bytes or str

    Raises
    ------
    OSError
        When the folder does not exist or cannot be written, or the disk is full; the
        error names ``path``, never the temporary file.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
    >>> atomic_write(target, "hello\\n")
    >>> target.read_text()
    'hello\\n'
    >>> atomic_write("/dev/null", "a device is written through, never replaced")
    """
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    try:
        kind = os.stat(path).st_mode
    except FileNotFoundError:
        kind = None
    except OSError as e:
        raise _naming(e, path) from None
    try:
        if kind is not None and not stat.S_ISREG(kind):
            _write_through(path, payload)
        else:
            _replace(Path(os.path.realpath(path)) if path.is_symlink() else path, payload)
    except OSError as e:
        raise _naming(e, path) from None


def _naming(error: OSError, path: Path) -> OSError:
    """The same error, naming the file the caller asked for (not a temporary one)."""
    return OSError(error.errno, error.strerror or str(error), os.fspath(path))


def _write_through(path: Path, payload: bytes) -> None:
    with open(path, "wb") as f:
        f.write(payload)
        f.flush()


def _replace(path: Path, payload: bytes) -> None:
    mode = _file_mode(path)
    with _terminate_as_exit():
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


@contextlib.contextmanager
def _terminate_as_exit():
    """While writing, let SIGTERM raise ``SystemExit(143)`` (so the temporary file is
    removed) when nothing else handles it; an installed handler stays as it is."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def leave(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, leave)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _file_mode(path: Path) -> int:
    """The existing file's permissions, else what ``open()`` would give under the umask."""
    with contextlib.suppress(OSError):
        return path.stat().st_mode & 0o7777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask
