"""Atomic file writes: a reader (or a killed run) never sees a half-written file."""
from __future__ import annotations

import os
import tempfile


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()


def write_atomic(path: str, payload: bytes | str) -> None:
    """Write ``payload`` to ``path`` through a temp file in the same directory and ``os.replace``."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes owner-only files; these are ordinary outputs
        with os.fdopen(fd, "wb") as f:
            f.write(payload.encode("utf-8") if isinstance(payload, str) else payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.filename in (None, tmp):  # name the file being written, not the temp
            raise OSError(e.errno, e.strerror, path) from None
        raise
