"""One line for each failure of the environment (disk, permissions, paths, network).

The CLI prints these instead of a traceback (which ``-v`` still shows): the user's machine, not
the code, needs fixing, and the line says what to do. Each errno maps to a hint in
:data:`OS_ERROR_HINTS`; a path that names a file where a directory is needed (or the reverse)
is reported by the part of the path that is wrong. Stores keep their last committed state on
any such failure (see the crash-safety notes of the store modules).
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

UNCHANGED = "what was already stored is unchanged"
"""What a store keeps on a failed write, unless the error's ``store_state`` says otherwise."""

OS_ERROR_HINTS: dict[int, str] = {
    errno.ENOSPC: "no space left on the device; free some space or choose another --data-dir",
    errno.EDQUOT: "disk quota exceeded; free some space or choose another --data-dir",
    errno.EACCES: "permission denied; choose a --data-dir you can write to, or fix its permissions",
    errno.EPERM: "operation not permitted; choose a --data-dir you can write to, or fix its "
    "permissions",
    errno.EROFS: "read-only file system; choose a writable --data-dir",
    errno.EISDIR: "is a directory, expected a file (--catalog takes a YAML file)",
}
"""errno → what the user should do; ``ENOTDIR``/``EEXIST`` are worded from the path."""


def _file_in_the_way(filename: str) -> Path | None:
    """The first existing ancestor of ``filename`` (itself included) that is not a directory."""
    path = Path(filename)
    for candidate in [*reversed(path.parents), path]:
        if candidate.exists() and not candidate.is_dir():
            return candidate
    return None


def environment_message(error: OSError) -> str:
    """One actionable line describing ``error`` (an ``OSError`` of the environment).

    Parameters
    ----------
    error : OSError
        Raised by the file system, a lock, or a network connection.

    Returns
    -------
    str
        ``"<path>: <what is wrong>; <what to do>"`` where the path and errno are known, else
        the error's own text on one line.
    """
    if isinstance(error, shutil.Error) and error.args and isinstance(error.args[0], list):
        # copytree's list of every failed file (thousands on a full disk): count and first one
        failed = error.args[0]
        first = " ".join(str(failed[0][-1]).split()) if failed else "unknown"
        return f"copying failed for {len(failed)} files, the first: {first}"
    filename = os.fsdecode(error.filename) if error.filename is not None else None
    if error.errno in (errno.ENOTDIR, errno.EEXIST) and filename:
        blocker = _file_in_the_way(filename)
        if blocker is not None:
            return f"{blocker} is a file, not a directory; --data-dir must name a directory"
    hint = OS_ERROR_HINTS.get(error.errno) if error.errno is not None else None
    if hint is not None and error.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = f"{hint} ({getattr(error, 'store_state', UNCHANGED)})"
    if hint is not None:
        return f"{filename}: {hint}" if filename else hint
    text = " ".join(str(error).split())  # one line
    return text or type(error).__name__
