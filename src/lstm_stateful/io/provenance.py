"""What a run records so that it can be rerun: the ``results.json`` format, the data
file's identity, and reading a recorded config back (``run --from``).

Pure Python (no JAX): a bad ``--from`` fails before anything heavy is imported.
"""

from __future__ import annotations

import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path

from lstm_stateful.core.config import ExperimentConfig
from lstm_stateful.core.errors import ConfigError

RESULTS_FORMAT = "lstm-stateful/run-results"
RESULTS_VERSION = 1
# The packages whose versions decide the numbers.
PACKAGES = ("lstm-stateful", "jax", "jaxlib", "optax", "numpy", "matplotlib")


def package_versions() -> dict[str, str]:
    """Installed versions of ``PACKAGES`` and Python's (read from metadata: no import)."""
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def data_file(path: str | None) -> dict | None:
    """The data file a run read, identified by content: rerunning its config on a changed
    file is detectable."""
    if path is None:
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"path": str(Path(path).resolve()), "sha256": digest.hexdigest(), "bytes": Path(path).stat().st_size}


def read_results_config(path: Path) -> tuple[ExperimentConfig, dict | None]:
    """The config and data-file record of a ``results.json`` (``ConfigError`` on ``results``)."""
    try:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("results", f"no such file: {str(path)!r}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError("results", f"{str(path)!r} is not a readable results.json ({e})") from None
    if not isinstance(d, dict) or d.get("format") != RESULTS_FORMAT:
        raise ConfigError("results", f"{str(path)!r} is not an lstm-stateful results.json")
    if d.get("format_version") != RESULTS_VERSION:
        raise ConfigError(
            "results", f"{str(path)!r} has format version {d.get('format_version')!r}, not {RESULTS_VERSION}"
        )
    try:
        cfg = ExperimentConfig.from_dict(d["config"])
    except (KeyError, TypeError) as e:
        raise ConfigError("results", f"{str(path)!r} holds an incomplete config ({e})") from None
    except ConfigError as e:  # a value no run could have had: the file was edited
        raise ConfigError("results", f"{str(path)!r} records an invalid config ({e})") from None
    return cfg, _data_file_record(path, d.get("data_file"))


def _data_file_record(path: Path, record: object) -> dict | None:
    """The recorded data file (path and SHA-256), checked: None, or both as strings."""
    if record is None:
        return None
    if not (isinstance(record, dict) and all(isinstance(record.get(k), str) for k in ("path", "sha256"))):
        raise ConfigError("results", f"{str(path)!r} holds a malformed data_file record: {record!r:.80}")
    return record
