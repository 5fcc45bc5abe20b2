"""``report.html``: one self-contained page for a run or a sweep directory.

Everything comes from the files the run or sweep wrote (``results.json``, the figures,
``summary.csv``, the store's recorded spec), so ``lstm-stateful report DIR`` redraws the
same page at any later time: figures are embedded as base64 PNGs, styles are inline,
there is no script and nothing is fetched. Pure Python (no JAX).
"""

from __future__ import annotations

import base64
import csv
import html
import json
from pathlib import Path

from lstm_stateful.core.errors import ConfigError
from lstm_stateful.io.atomic import write_atomic
from lstm_stateful.io.provenance import package_versions

REPORT_FILE = "report.html"
RUN_FIGURES = ("input.png", "residuals.png", "losses.png")
SWEEP_FIGURES = ("phase_diagram.png",)
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; } td.l, th.l { text-align: left; }
.banner { font-weight: bold; padding: 0.6em 1em; border-left: 0.4em solid #888; background: #f7f7f7; }
.held { border-color: #2a2; } .failed { border-color: #c22; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(value: object, spec: str = ".4g") -> str:
    return "—" if value is None else format(value, spec) if isinstance(value, float) else str(value)


def _table(header: list[str], rows: list[list[object]], left: int = 1) -> str:
    """A table; the first ``left`` columns are text (left-aligned)."""

    def cell(tag: str, i: int, v: object) -> str:
        align = ' class="l"' if i < left else ""
        return f"<{tag}{align}>{_e(v)}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figure(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    img = f'<img alt="{_e(path.name)}" src="data:image/png;base64,{data}">'
    return f"<figure>{img}<figcaption>{_e(path.name)}</figcaption></figure>"


def _page(title: str, sections: list[str]) -> str:
    body = "\n".join(sections)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f"<style>{STYLE}</style></head>\n<body>\n<h1>{_e(title)}</h1>\n{body}\n</body></html>\n"
    )


def _flat(d: dict, prefix: str = "") -> list[list[object]]:
    """A nested config as rows of (dotted key, value)."""
    rows: list[list[object]] = []
    for key, value in d.items():
        if isinstance(value, dict):
            rows += _flat(value, f"{prefix}{key}.")
        else:
            rows.append([f"{prefix}{key}", "—" if value is None else value])
    return rows


def _banner(text: str | None, held: bool | None, measured: str) -> str:
    if text is None:
        return f'<p class="banner">The example\'s rule is about its moving average; measured: {_e(measured)}</p>'
    state = {True: ("held", "held"), False: ("failed", "did NOT hold"), None: ("", "cannot be checked")}[held]
    return f'<p class="banner {state[0]}">The example says: {_e(text)} — this {state[1]}. Measured: {_e(measured)}</p>'


def _model_rows(models: dict) -> list[list[object]]:
    return [
        [
            mode,
            f"{m['seeds_converged']}/{len(m['per_seed'])}",
            m.get("seeds_diverged", 0),
            _num(m["median_r2"], ".3f"),
            _num(m["median_test_mse"], ".3e"),
            m["verdict"],
            m["median_seed"],
            _num(m["timings"]["train_s"], ".2f"),
        ]
        for mode, m in models.items()
    ]


def _seed_rows(models: dict) -> list[list[object]]:
    rows = []
    for mode, m in models.items():
        for s in m["per_seed"]:
            last = (s["train_loss"] or [None])[-1], (s["val_loss"] or [None])[-1]
            mark = " (median)" if s["seed_index"] == m["median_seed"] else ""
            flags = "diverged" if s.get("diverged") else "converged" if s["converged"] else "not converged"
            rows.append([mode, f"{s['seed_index']}{mark}", flags, _num(s["r2"], ".4f"), _num(s["test_mse"], ".3e")])
            rows[-1] += [_num(last[0], ".3e"), _num(last[1], ".3e")]
    return rows


def run_page(directory: Path) -> str:
    """The page of a run directory, from its results.json and figures."""
    d = json.loads((directory / "results.json").read_text(encoding="utf-8"))
    models = d["models"]
    measured = "; ".join(
        f"{mode} {m['verdict']} (median R² {_num(m['median_r2'], '.3f')})" for mode, m in models.items()
    )
    header = ["model", "converged", "diverged", "median R²", "median test MSE", "verdict", "median seed", "train s"]
    seed_header = ["model", "seed", "status", "R²", "test MSE", "last train loss", "last val loss"]
    figures = [_figure(directory / name) for name in RUN_FIGURES if (directory / name).is_file()]
    sections = [
        _banner(d["banner"], d["banner_held"], measured),
        "<h2>Test set, median over seeds</h2>",
        _table(header, _model_rows(models)),
        _table(["floor", "MSE"], [[k, _num(v)] for k, v in d["floors"].items()]),
        "<h2>Figures</h2>",
        *figures,
        "<h2>Every seed</h2>",
        _table(seed_header, _seed_rows(models), left=3),
        "<h2>Config</h2>",
        _table(["setting", "value"], _flat(d["config"])),
    ]
    if d.get("data_file"):
        sections.append(_table(["data file", ""], _flat(d["data_file"])))
    sections += ["<h2>Versions</h2>", _table(["package", "version"], _flat(d["versions"]))]
    sections += [
        "<h2>Timings (s)</h2>",
        _table(["", "seconds"], [[k, _num(v, ".3f")] for k, v in d["timings"].items()]),
    ]
    return _page(f"lstm-stateful run: {directory.name}", sections)


def _sweep_spec(directory: Path) -> list[list[object]]:
    """The sweep's recorded spec (``sweep.json``), as config rows."""
    path = directory / "sweep.json"
    return _flat(json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else []


SWEEP_COLUMNS = (
    ("tsteps", "tsteps"), ("lahead", "lahead"), ("mode", "model"), ("n_seeds", "seeds"), ("n_diverged", "diverged"),
    ("converged_fraction", "converged"), ("r2_median", "median R²"), ("r2_ci95_low", "R² 95% low"),
    ("r2_ci95_high", "R² 95% high"), ("mse_median", "median MSE"), ("floor", "floor"), ("verdict", "verdict"),
    ("banner_held", "rule held"),
)  # fmt: skip


def sweep_page(directory: Path) -> str:
    """The page of a sweep directory, from summary.csv, the phase diagram and the store."""
    with (directory / "summary.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    stateless = [r for r in rows if r["mode"] == "stateless"]
    held = sum(r["banner_held"] == "True" for r in stateless)
    measured = f"the rule held in {held} of {len(stateless)} grid points (stateless model, median over seeds)"
    table = [[r[key] or "—" for key, _ in SWEEP_COLUMNS] for r in rows]
    sections = [
        _banner("STATELESS LSTM CONVERGES ONLY IF LAHEAD >= TSTEPS", held == len(stateless), measured),
        *(_figure(directory / name) for name in SWEEP_FIGURES if (directory / name).is_file()),
        "<h2>Every grid point</h2>",
        _table([title for _, title in SWEEP_COLUMNS], table, left=0),
    ]
    if spec := _sweep_spec(directory):
        sections += ["<h2>Sweep config</h2>", _table(["setting", "value"], spec)]
    sections += [
        "<h2>Versions (installed when this page was written)</h2>",
        _table(["package", "version"], _flat(package_versions())),
    ]
    return _page(f"lstm-stateful sweep: {directory.name}", sections)


def write_report(directory: Path) -> Path:
    """Write ``directory/report.html`` for a run or a sweep directory; returns its path."""
    if (directory / "results.json").is_file():
        draw, source = run_page, "results.json"
    elif (directory / "summary.csv").is_file():
        draw, source = sweep_page, "summary.csv"
    else:
        raise ConfigError("PATH", f"{str(directory)!r} holds neither a run (results.json) nor a sweep (summary.csv)")
    try:
        page = draw(directory)
    except (KeyError, TypeError, ValueError, AttributeError, OSError) as e:  # edited by hand, or another tool
        raise ConfigError(
            "PATH", f"{str(directory / source)!r} cannot be read as lstm-stateful wrote it ({e!r})"
        ) from None
    path = directory / REPORT_FILE
    write_atomic(path, page)
    return path
