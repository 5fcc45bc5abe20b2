"""``report``: write a run's or a sweep's ``report.html`` again from its directory."""

from __future__ import annotations

import json
from pathlib import Path

from lstm_stateful.core.errors import ConfigError


def report(path: Path) -> Path:
    """Write ``path/report.html``, one self-contained page, for a run or a sweep directory;
    returns the page's path."""
    from lstm_stateful.render.fleet_report import write_fleet_report
    from lstm_stateful.render.report import write_report

    if not Path(path).is_dir():
        raise ConfigError("path", f"no such directory: {str(path)!r}")
    return write_fleet_report(Path(path)) if _is_fleet(Path(path)) else write_report(Path(path))


def _is_fleet(directory: Path) -> bool:
    """A fleet run's directory: its results.json says ``"kind": "fleet"``."""
    try:
        return json.loads((directory / "results.json").read_text()).get("kind") == "fleet"
    except (OSError, ValueError, AttributeError):
        return False
