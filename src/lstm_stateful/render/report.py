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
from collections.abc import Collection
from pathlib import Path
from typing import NamedTuple

from lstm_stateful.core.errors import ConfigError
from lstm_stateful.io.atomic import write_atomic
from lstm_stateful.io.provenance import package_versions

REPORT_FILE = "report.html"
RUN_FIGURES = ("input.png", "residuals.png", "losses.png", "baselines.png")
SWEEP_FIGURES = ("phase_diagram.png", "scores.png")  # a sweep has one of them
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; white-space: nowrap; }
th { background: #f3f3f3; white-space: normal; } td.l, th.l { text-align: left; }
td.l { white-space: normal; overflow-wrap: anywhere; }
table.grid { font-size: 0.9em; } table.grid th { vertical-align: bottom; }
table.grid td, table.grid th { padding: 0.2em 0.45em; white-space: normal; }
td[title] { text-decoration: underline dotted #bbb; }
.banner { font-weight: bold; padding: 0.6em 1em; border-left: 0.4em solid #888; background: #f7f7f7; }
.held { border-color: #2a2; } .failed { border-color: #c22; }
.legend { font-size: 0.9em; color: #444; max-width: 60em; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(value: object, spec: str = ".4g") -> str:
    return "—" if value is None else format(value, spec) if isinstance(value, float) else str(value)


class Num(NamedTuple):
    """A table entry shown rounded, with its full-precision value as the tooltip (``title``):
    the page stays narrow and every digit the files hold is still on it."""

    text: str
    full: str


def _table(
    header: list[str], rows: list[list[object]], left: int = 1, css: str = "", text: Collection[int] = ()
) -> str:
    """A table; the first ``left`` columns, and those in ``text``, are text (left-aligned:
    long words wrap); the others are numbers (right-aligned, never broken)."""

    def cell(tag: str, i: int, v: object) -> str:
        align = ' class="l"' if i < left or i in text else ""
        if isinstance(v, Num):
            return f'<{tag}{align} title="{_e(v.full)}">{_e(v.text)}</{tag}>'
        return f"<{tag}{align}>{_e(v)}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(r)) + "</tr>" for r in rows)
    attrs = f' class="{css}"' if css else ""
    return f"<table{attrs}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


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
            _num(m["timings"]["train_s"], ".3g"),
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
            rows[-1] += [_num(s.get("skill"), ".4g"), _num(last[0], ".3e"), _num(last[1], ".3e")]
    return rows


def _baseline_section(d: dict) -> list[str]:
    """The baselines' MSEs on each model's scored points, and each model's skill over the
    best of them; nothing for a results.json written before baselines were reported."""
    if "baselines" not in d:
        return []
    baselines, models = d["baselines"], d["models"]
    names = list(next(iter(baselines.values())))
    rows = [[name, *(_num(baselines[mode][name], ".3e") for mode in baselines)] for name in names]
    skills = []
    for mode, m in models.items():
        s = m["skill"]
        interval = f"{_num(s['interval'][0], '.4g')} to {_num(s['interval'][1], '.4g')}"
        skills.append([mode, s["baseline"], _num(s["baseline_mse"], ".3e"), _num(s["median"], ".4g"), interval])
        skills[-1].append(s["verdict"])
    legend = (
        "Baselines: the training rows' mean target; persistence, the newest value of the first input; the seasonal "
        "naive forecast (with a season), the target one season earlier; linear, least squares with an intercept from "
        "each window to its target, fitted on the training rows. Skill: 1 - MSE / the best baseline's MSE, per seed, "
        f"on the same test points, in the data's units; its interval: {s['interval_kind']}. A model beats the "
        "baselines when the whole interval is above 0."
    )
    return [
        "<h2>Baselines, test MSE</h2>",
        _table(["baseline", *(f"on the {mode} model's points" for mode in baselines)], rows),
        "<h3>Skill over the best baseline</h3>",
        _table(["model", "best baseline", "its MSE", "median skill", "skill interval", "against the baselines"],
               skills, left=2, text=(5,)),
        f'<p class="legend">{_e(legend)}</p>',
    ]  # fmt: skip


def run_page(directory: Path) -> str:
    """The page of a run directory, from its results.json and figures."""
    d = json.loads((directory / "results.json").read_text(encoding="utf-8"))
    models = d["models"]
    measured = "; ".join(
        f"{mode} {m['verdict']} (median R² {_num(m['median_r2'], '.3f')})" for mode, m in models.items()
    )
    header = ["model", "converged", "diverged", "median R²", "median test MSE", "verdict", "median seed", "train s"]
    seed_header = ["model", "seed", "status", "R²", "test MSE", "skill", "last train loss", "last val loss"]
    figures = [_figure(directory / name) for name in RUN_FIGURES if (directory / name).is_file()]
    sections = [
        _banner(d["banner"], d["banner_held"], measured),
        "<h2>Test set, median over seeds</h2>",
        _table(header, _model_rows(models), text=(5,)),
        _table(["floor", "MSE"], [[k, _num(v)] for k, v in d["floors"].items()]),
        *_baseline_section(d),
        "<h2>Figures</h2>",
        *figures,
        "<h2>Every seed</h2>",
        _table(seed_header, _seed_rows(models), left=3),
        "<h2>Config</h2>",
        _table(["setting", "value"], _flat(d["config"]), left=2),
    ]
    if d.get("data_file"):
        sections.append(_table(["data file", ""], _flat(d["data_file"]), left=2))
    sections += ["<h2>Versions</h2>", _table(["package", "version"], _flat(d["versions"]), left=2)]
    sections += [
        "<h2>Timings (s)</h2>",
        _table(["", "seconds"], [[k, _num(v)] for k, v in d["timings"].items()]),
    ]
    return _page(f"lstm-stateful run: {directory.name}", sections)


def _sweep_spec(directory: Path) -> list[list[object]]:
    """The sweep's recorded spec (``sweep.json``), as config rows."""
    path = directory / "sweep.json"
    return _flat(json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else []


# summary.csv's columns on the page: (field, heading); seed counts are shown as "k/n", R² to
# 4 significant digits, MSEs as on the run page (full precision in the tooltip and the file).
SWEEP_COLUMNS = (
    ("tsteps", "tsteps"), ("lahead", "lahead"), ("mode", "model"), ("converged_fraction", "converged"),
    ("n_diverged", "diverged"), ("r2_median", "median R²"), ("r2_ci95", "R² 95% interval"),
    ("mse_median", "median MSE"), ("floor", "floor"), ("verdict", "verdict"), ("banner_held", "rule held"),
)  # fmt: skip
# Shown where summary.csv holds baselines (sweeps written before them have none).
SKILL_COLUMNS = (("best_baseline", "best baseline"), ("skill_median", "median skill"), ("skill", "skill interval"))
SWEEP_LEGEND = (
    "converged, diverged: seeds whose test R² reached 0.9, and seeds whose predictions went to NaN or infinity "
    "(left out of every number), of the seeds trained; R² 95% interval: bootstrap interval of the mean R² over the "
    "seeds that did not diverge; MSE: test mean squared error; floor: the lowest MSE the model can reach; rule held: "
    "whether the stateless model did what the example's rule says (— for the stateful model, which the rule says "
    "nothing about; unchecked where every stateless seed diverged); skill: 1 - MSE / the best baseline's MSE on the "
    "same test points, per seed, its median and interval (lowest to highest) over the seeds that did not diverge. "
    "Numbers are rounded: hover over one for its full precision, or read summary.csv."
)
RULE_HELD_TEXT = {"True": "yes", "False": "no"}
TEXT_FIELDS = ("mode", "verdict", "banner_held", "best_baseline")


def _sig(text: str, spec: str = "#.4g") -> object:
    """A summary.csv number rounded by ``spec``, its full text as the tooltip; empty: —.
    Exactly 0 stays "0" (a stateful model's floor), not 0.000e+00."""
    if not text:
        return "—"
    value = float(text)
    return Num("0" if value == 0 else format(value, spec), text)


def _seeds(r: dict[str, str]) -> object:
    """The share of converged seeds as "k/n" (the fraction in the tooltip)."""
    n = int(r["n_seeds"])
    return Num(f"{round(float(r['converged_fraction']) * n)}/{n}", r["converged_fraction"])


def _checkable(row: dict[str, str]) -> bool:
    """Whether the rule can be checked at this stateless row. The verdict is looked at too,
    so that a summary.csv written before diverged points were left out still reads right."""
    return row["banner_held"] in RULE_HELD_TEXT and row["verdict"] != "diverged"


def _interval(low_text: str, high_text: str) -> object:
    low, high = _sig(low_text), _sig(high_text)
    if isinstance(low, Num) and isinstance(high, Num):
        return Num(f"{low.text} to {high.text}", f"{low.full} to {high.full}")
    return "—"


def _sweep_row(r: dict[str, str], columns: list[tuple[str, str]]) -> list[object]:
    """A summary.csv row as the page's ``columns``: (field, heading) each."""
    held = "—" if r["mode"] != "stateless" else RULE_HELD_TEXT[r["banner_held"]] if _checkable(r) else "unchecked"
    cells = {
        "converged_fraction": _seeds(r), "n_diverged": f"{r['n_diverged']}/{r['n_seeds']}",
        "r2_median": _sig(r["r2_median"]), "r2_ci95": _interval(r["r2_ci95_low"], r["r2_ci95_high"]),
        "mse_median": _sig(r["mse_median"], ".3e"), "floor": _sig(r["floor"], ".3e"), "banner_held": held,
        "skill_median": _sig(r.get("skill_median", "")),
        "skill": _interval(r.get("skill_low", ""), r.get("skill_high", "")),
    }  # fmt: skip
    return [cells[field] if field in cells else r.get(field) or "—" for field, _ in columns]


def _sweep_columns(fields: list[str], rows: list[dict[str, str]]) -> list[tuple[str, str]]:
    """The page's columns: the grid's other settings (summary.csv leads with them), the
    scores, and the skills where the sweep stored baselines."""
    settings = [(field, field) for field in fields[: fields.index("tsteps")]]
    skills = SKILL_COLUMNS if any(r.get("best_baseline") for r in rows) else ()
    return [*settings, *SWEEP_COLUMNS, *skills]


def _rule_record(rows: list[dict[str, str]]) -> tuple[bool | None, str]:
    """The banner's state (None: no point to check the rule at) and what was measured."""
    stateless = [r for r in rows if r["mode"] == "stateless"]
    checked = [r for r in stateless if _checkable(r)]
    held = sum(r["banner_held"] == "True" for r in checked)
    measured = f"stateless model, median over seeds: the rule held in {held} of {len(checked)} grid points"
    if unchecked := len(stateless) - len(checked):
        measured += f"; {unchecked} cannot be checked (every stateless seed diverged)"
    return (held == len(checked) if checked else None), measured


def sweep_page(directory: Path) -> str:
    """The page of a sweep directory, from summary.csv, its figure and the store."""
    with (directory / "summary.csv").open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    columns = _sweep_columns(list(reader.fieldnames or ()), rows)
    text = [i for i, (field, _) in enumerate(columns) if field in TEXT_FIELDS]
    held, measured = _rule_record(rows)
    sections = [
        _banner("STATELESS LSTM CONVERGES ONLY IF LAHEAD >= TSTEPS", held, measured),
        *(_figure(directory / name) for name in SWEEP_FIGURES if (directory / name).is_file()),
        "<h2>Every grid point</h2>",
        _table([h for _, h in columns], [_sweep_row(r, columns) for r in rows], left=0, css="grid", text=text),
        f'<p class="legend">{_e(SWEEP_LEGEND)}</p>',
    ]
    if spec := _sweep_spec(directory):
        sections += ["<h2>Sweep config</h2>", _table(["setting", "value"], spec, left=2)]
    sections += [
        "<h2>Versions (installed when this page was written)</h2>",
        _table(["package", "version"], _flat(package_versions()), left=2),
    ]
    return _page(f"lstm-stateful sweep: {directory.name}", sections)


def write_report(directory: Path) -> Path:
    """Write ``directory/report.html`` for a run or a sweep directory; returns its path."""
    if (directory / "results.json").is_file():
        draw, source = run_page, "results.json"
    elif (directory / "summary.csv").is_file():
        draw, source = sweep_page, "summary.csv"
    else:
        raise ConfigError("path", f"{str(directory)!r} holds neither a run (results.json) nor a sweep (summary.csv)")
    try:
        page = draw(directory)
    except (KeyError, TypeError, ValueError, AttributeError, OSError) as e:  # edited by hand, or another tool
        raise ConfigError(
            "path", f"{str(directory / source)!r} cannot be read as lstm-stateful wrote it ({e!r})"
        ) from None
    path = directory / REPORT_FILE
    write_atomic(path, page)
    return path
