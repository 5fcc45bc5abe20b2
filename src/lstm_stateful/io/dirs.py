"""Output directories: created and proved writable before any work, so a bad path costs nothing."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

from lstm_stateful.core.errors import ConfigError


def timestamped(root: Path) -> Path:
    """A new ``root/<UTC timestamp>`` path (``-1``, ``-2``... if taken); not created."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    out, n = root / stamp, 1
    while out.exists():
        out, n = root / f"{stamp}-{n}", n + 1
    return out


def writable(path: Path, param: str) -> Path:
    """Create directory ``path`` (with its parents) and check a file can be made in it;
    a ``ConfigError`` naming ``param`` otherwise."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise ConfigError(param, f"cannot write to directory {str(path)!r}: {e.strerror or e}") from None
    return path
