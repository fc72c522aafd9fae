"""atomicfile writes gctrace's outputs whole or not at all, and never clobbers what is not a file of ours.

Every writer in gctrace (reports, pictures, HTML pages, imported and recorded
dumps) goes through here, so one set of rules holds for all of them:

- ``-`` is standard output.
- A regular file, or a path that does not exist yet, is written as a temp
  file beside it (``.gctrace-*.tmp``, a unique name in the same directory)
  and renamed onto it at the end: a reader sees the old file or the new one,
  never half of one. A symlink to a regular file replaces its target; the
  link stays a link.
- A character device or a FIFO (``/dev/null``, a terminal, a named pipe, or
  a symlink to one) is written through: opened and written, never replaced.
- Anything else (a directory, a block device, a socket) is refused.
- An output that is one of the command's inputs (the same inode, through
  symlinks and hard links) is refused before anything is written: the input
  may be someone's only copy of a production heap dump.
- The temp file goes away on every path: an error, a full disk, Ctrl-C.

Errors are OutputError (exit 2, one line naming the path). The tracer and
the analyzer both use this module; it imports nothing of either.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
import tempfile
from contextlib import contextmanager
from typing import BinaryIO, Iterable, Iterator

from gctrace.errors import OutputError

STDOUT = "-"
TEMP_PREFIX = ".gctrace-"
TEMP_SUFFIX = ".tmp"


def refuse_inputs(out, inputs: Iterable) -> None:
    """refuse_inputs raises OutputError when ``out`` is one of ``inputs`` (same file, however reached).

    Only an output that would be replaced is checked: writing through a
    terminal or a pipe that is also an input destroys nothing.
    """
    out = os.fspath(out)
    if out == STDOUT:
        return
    try:
        st = os.stat(out)
    except OSError:
        return  # does not exist (yet): it is no input
    if not stat.S_ISREG(st.st_mode):
        return
    for inp in inputs:
        if inp is None or os.fspath(inp) == STDOUT:
            continue
        try:
            same = os.path.samefile(out, inp)
        except OSError:
            continue
        if same:
            raise OutputError(out, f"is the input {os.fspath(inp)}: refusing to overwrite it, "
                                   f"write the output to another file")


def _target(out: str) -> tuple[str, bool]:
    """_target returns where ``out`` really is and whether it is written through (device, FIFO) or replaced."""
    real = os.path.realpath(out)
    try:
        st = os.stat(real)
    except FileNotFoundError:
        return real, False
    except OSError as e:
        raise OutputError(out, f"cannot write: {e.strerror or e}") from None
    if stat.S_ISREG(st.st_mode):
        return real, False
    if stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode):
        return out, True
    what = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file, character device or FIFO"
    raise OutputError(out, f"cannot write: {what}")


def _mode_for(real: str) -> int:
    """_mode_for returns the permissions a replaced file keeps, or a new file's (0666 less the umask)."""
    try:
        return os.stat(real).st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _error(out: str, e: OSError) -> OutputError:
    return OutputError(out, f"cannot write: {e.strerror or e}")


@contextmanager
def open_output(out, inputs: Iterable = ()) -> Iterator[BinaryIO]:
    """open_output yields a binary file for ``out``; leaving the block without an exception commits it.

    An exception (KeyboardInterrupt included) leaves the old ``out`` as it
    was and no temp file behind; an OSError becomes OutputError.
    """
    out = os.fspath(out)
    refuse_inputs(out, inputs)
    if out == STDOUT:
        stream = sys.stdout.buffer
        try:
            yield stream
            stream.flush()
        except OSError as e:
            raise _error(out, e) from None
        return
    real, through = _target(out)
    if through:
        try:
            with open(out, "wb") as f:
                yield f
        except OSError as e:
            raise _error(out, e) from None
        return
    with _beside(out, real) as (fd, _):
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())  # a full disk may only say so here (NFS, quotas)


def write_bytes(out, data: bytes, inputs: Iterable = ()) -> None:
    """write_bytes writes ``data`` to ``out`` whole or not at all (see open_output)."""
    with open_output(out, inputs) as f:
        f.write(data)


@contextmanager
def output_path(out, inputs: Iterable = ()) -> Iterator[str]:
    """output_path yields a path for a writer that opens files by name (the native dump writer).

    For a regular file it is a fresh temp file beside ``out``, renamed onto
    it when the block ends without an exception and removed otherwise; a
    device or FIFO is yielded as it is; for ``-`` the writer writes a temp
    file that is then copied to standard output.
    """
    out = os.fspath(out)
    refuse_inputs(out, inputs)
    if out != STDOUT and _target(out)[1]:
        yield out
        return
    if out == STDOUT:
        with scratch_path() as tmp:
            yield tmp
            try:
                with open(tmp, "rb") as src:
                    shutil.copyfileobj(src, sys.stdout.buffer, 1 << 20)
                sys.stdout.buffer.flush()
            except OSError as e:
                raise _error(out, e) from None
        return
    real = _target(out)[0]
    with _beside(out, real) as (fd, tmp):
        os.close(fd)
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextmanager
def _beside(out, real) -> Iterator[tuple[int, str]]:
    """_beside yields (fd, path) of a fresh temp file beside ``real`` and renames it onto ``real`` when the block ends.

    The temp name is unique (mkstemp), so two writers never share one; it
    gets the mode ``real`` would have, and is removed when the block raises.
    An OSError, the block's included, becomes the OutputError of ``out``.
    """
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(real), prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX)
        yield fd, tmp
        os.chmod(tmp, _mode_for(real))  # mkstemp makes 0600; a report is an ordinary file
        os.replace(tmp, real)
        tmp = None
    except OSError as e:
        raise _error(out, e) from None
    finally:
        if tmp is not None:
            _unlink_quietly(tmp)


@contextmanager
def scratch_path(directory=None, suffix: str = TEMP_SUFFIX) -> Iterator[str]:
    """scratch_path yields the name of a new empty temp file (in ``directory``), removed on every path.

    ``suffix`` ends the name after the temp part: a writer that picks its
    form from the name (``.jsonl.gz``) gets the one it should write.
    """
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=TEMP_PREFIX, suffix=suffix)
    os.close(fd)
    try:
        yield tmp
    finally:
        _unlink_quietly(tmp)


def scratch_dir(out) -> str | None:
    """scratch_dir is the directory for a big scratch file that goes with ``out``, or None for the system's temp one.

    Beside ``out`` when it is a file written by rename (that disk must hold
    the output anyway); for ``-``, a device or a FIFO (``/dev/null``), the
    temp directory: never ``/dev`` or a FIFO's directory.
    """
    out = os.fspath(out)
    if out == STDOUT:
        return None
    real, through = _target(out)
    return None if through else os.path.dirname(real)
