"""``report``: write a run's or a sweep's ``report.html`` again from its directory."""

from __future__ import annotations

from pathlib import Path

from lstm_stateful.core.errors import ConfigError


def report(path: Path) -> Path:
    """Write ``path/report.html``, one self-contained page, for a run or a sweep directory;
    returns the page's path."""
    from lstm_stateful.render.report import write_report

    if not Path(path).is_dir():
        raise ConfigError("path", f"no such directory: {str(path)!r}")
    return write_report(Path(path))
