"""A fleet run's page, figures and terminal summary: the numbers and the verdict, worded
plainly (a baseline that wins is named), the figures embedded."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from lstm_stateful.core.errors import ConfigError
from lstm_stateful.engine.fleet import MODELS, FleetResult, Verdict
from lstm_stateful.render import fleet_outputs, fleet_plots
from lstm_stateful.render.fleet_console import print_fleet
from lstm_stateful.render.fleet_report import comparison, verdict_line, write_fleet_report
from tests.render.test_fleet_outputs import fleet_result
from tests.render.test_report import embedded_pngs, parse

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def result() -> FleetResult:
    return fleet_result()


def with_verdict(result: FleetResult, best: str, baseline: str, d: tuple[float, float, float]) -> FleetResult:
    """``result`` with ``best`` the best model and every one of ours at difference ``d``."""
    return result._replace(verdict=Verdict(best, baseline, dict.fromkeys(MODELS, d)))


def write_dir(result: FleetResult, out: Path, figures: bool = True) -> Path:
    """A fleet run directory as the run command writes it (without its CSV files, which the
    page does not read; ``figures``: with the figures)."""
    out.mkdir()
    if figures:
        fleet_plots.series_figure(result, out / fleet_plots.SERIES_FILE)
        fleet_plots.mase_histogram(result, out / fleet_plots.HISTOGRAM_FILE)
    fleet_outputs.write_results(result, out / "results.json", {"data_file": None})
    write_fleet_report(out)
    return out


@pytest.fixture(scope="module")
def run_dir(result: FleetResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dir(result, tmp_path_factory.mktemp("fleet") / "run")


def page_text(path: Path) -> str:
    return " ".join(" ".join(parse(path).text).split())


def test_the_verdict_word_needs_the_whole_interval() -> None:
    assert comparison(-0.3, -0.01) == "better"
    assert comparison(0.01, 0.3) == "worse"
    assert comparison(-0.01, 0.3) == "undecided" and comparison(-0.3, 0.0) == "undecided"
    assert comparison(None, 0.1) == "unknown" and comparison(float("nan"), float("nan")) == "unknown"


def test_verdict_line_reads_as_documented() -> None:
    entry = {"difference": 0.009, "low": -0.004, "high": 0.022, "relative": 0.009 / 0.863, "series": 1428}
    assert verdict_line("stateful", 0.872, "ets", 0.863, entry) == (
        "stateful: mean MASE 0.872 vs ets 0.863: +0.009 (+1.0%), 95% interval over 1428 series "
        "[-0.004, +0.022]: not better than ets: the interval includes 0"
    )
    better = {**entry, "difference": -0.05, "low": -0.08, "high": -0.02, "relative": -0.05 / 0.9}
    line = verdict_line("combined", 0.85, "ets", 0.9, better)
    assert line.endswith("(-5.6%), 95% interval over 1428 series [-0.080, -0.020]: better than ets")
    none = {"difference": None, "low": None, "high": None, "relative": None, "series": 0}
    line = verdict_line("stateless", None, "ets", 0.9, none)
    assert line == "stateless: mean MASE n/a vs ets 0.900: n/a (n/a%), 95% interval over 0 series [n/a, n/a]: " + (
        "cannot be compared with ets: no series where both are scored"
    )


def test_report_has_the_verdict_the_table_and_the_figures(run_dir: Path, result: FleetResult) -> None:
    parser = parse(run_dir / "report.html")
    figures = [run_dir / name for name in fleet_plots.FLEET_FIGURES]
    assert embedded_pngs(parser) == [p.read_bytes() for p in figures]
    text = " ".join(" ".join(parser.text).split())
    d = json.loads((run_dir / "results.json").read_text())
    best, base = d["verdict"]["best"], d["verdict"]["best_baseline"]
    assert f"Best on mean MASE: {best}" in text and f"{best} (best)" in text
    for model in MODELS:
        entry = d["verdict"]["versus"][model]
        assert f"{model}: mean MASE {d['means'][model]['mase']:.3f} vs {base}" in text
        assert f"[{entry['low']:+.3f}, {entry['high']:+.3f}]" in text and f"{100 * entry['relative']:+.1f}%" in text
    html = (run_dir / "report.html").read_text()
    for model, means in result.means.items():
        assert f'title="{means["mase"]!r}">{means["mase"]:.3f}<' in html, model
        assert f'title="{result.val_mase[model]!r}">{result.val_mase[model]:.3f}<' in html, model
        assert f"{100 * means['beats_seasonal_naive']:.1f}%" in text
    assert len(re.findall(r"<tr>", html.split("<h2>Notes")[0])) == 1 + len(result.means)  # header, a row each
    assert "need the stats extra" in text and "panel.horizon" in text and d["versions"]["numpy"] in text


def test_report_says_plainly_when_a_baseline_wins(result: FleetResult, tmp_path: Path) -> None:
    lost = with_verdict(result, "seasonal-naive", "seasonal-naive", (0.2, 0.1, 0.3))
    text = page_text(write_dir(lost, tmp_path / "lost", figures=False) / "report.html")
    assert "Best on mean MASE: seasonal-naive, a baseline" in text and "none of our models beats it" in text
    assert text.count("not better than seasonal-naive: worse") == 3
    assert 'class="banner failed"' in (tmp_path / "lost" / "report.html").read_text()
    won = with_verdict(result, "stateful", "seasonal-naive", (-0.2, -0.3, -0.1))
    text = page_text(write_dir(won, tmp_path / "won", figures=False) / "report.html")
    assert "Best on mean MASE: stateful, one of ours" in text and text.count("better than seasonal-naive") == 3
    assert "not better" not in text


def test_report_refuses_what_is_not_a_fleet_run(run_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "results.json").write_text(json.dumps({"format": "lstm-stateful/run-results"}))
    with pytest.raises(ConfigError, match="not 'fleet'"):
        write_fleet_report(other)
    with pytest.raises(ConfigError, match="holds no fleet run"):
        write_fleet_report(tmp_path)


def record(result: FleetResult) -> str:
    console = Console(record=True, width=120)
    print_fleet(console, result)
    return console.export_text()


def test_console_shows_every_model_and_each_verdict(result: FleetResult) -> None:
    text = record(result)
    for model, means in result.means.items():
        name = f"{model} (best)" if model == result.verdict.best else model
        row = rf"^\s*{re.escape(name)}\s+{means['mase']:.3f}\s+{means['smape']:.2f}\s+"
        assert re.search(
            row + rf"{100 * means['beats_seasonal_naive']:.1f}%\s+{result.val_mase[model]:.3f}", text, re.M
        )
    base = result.verdict.best_baseline
    for model in MODELS:
        diff, low, high = result.verdict.versus[model]
        line = f"{model}: mean MASE {result.means[model]['mase']:.3f} vs {base} {result.means[base]['mase']:.3f}: "
        assert line + f"{diff:+.3f}" in " ".join(text.split())
        assert f"[{low:+.3f}, {high:+.3f}]" in text
    assert "note: AutoETS, AutoTheta and AutoARIMA need the stats extra" in text


def test_console_says_not_better_when_a_baseline_is_best(result: FleetResult) -> None:
    text = " ".join(record(with_verdict(result, "naive", "naive", (0.01, -0.02, 0.04))).split())
    assert "naive (best)" in text and "Best on mean MASE: naive, a baseline" in text
    assert text.count("not better than naive: the interval includes 0") == 3
    text = " ".join(record(with_verdict(result, "combined", "naive", (-0.05, -0.08, -0.02))).split())
    assert "combined (best)" in text and text.count(": better than naive") == 3 and "not better" not in text


def test_series_are_picked_over_the_ranks() -> None:
    mase = np.array([0.5, np.nan, 3.0, 1.0, 0.2, 2.0, np.inf, 0.7])
    assert fleet_plots.pick_series(mase, 3) == [(4, 1), (7, 3), (2, 6)]  # best, middle, worst
    assert [s for s, _ in fleet_plots.pick_series(mase, 10)] == [4, 0, 7, 3, 5, 2]  # every finite one
    assert fleet_plots.pick_series(np.full(4, np.nan), 2) == [(0, 0), (1, 0)]


def test_series_figure_shows_the_chosen_series_and_models(result: FleetResult, tmp_path: Path) -> None:
    ets = result.forecasts["seasonal-naive"] * 1.01  # as if the stats extra had run
    figure = fleet_plots.series_plot(result._replace(forecasts={**result.forecasts, "ets": ets}), n=4)
    axes = [ax for ax in figure.axes if ax.axison]
    mase = result.metrics["stateful"]["mase"]
    assert axes[0].get_title().startswith(f"{result.panel.ids[int(np.argmin(mase))]}: stateful MASE {mase.min():.3f}")
    assert axes[-1].get_title().startswith(f"{result.panel.ids[int(np.argmax(mase))]}: stateful MASE")
    assert len(axes) == 4 and axes[0].get_legend_handles_labels()[1] == ["data", *fleet_plots.SERIES_MODELS]
    path = fleet_plots.series_figure(result, tmp_path / "series.png", n=2)
    assert path.read_bytes().startswith(PNG) and [p.name for p in tmp_path.iterdir()] == ["series.png"]


def test_histogram_has_ours_and_the_best_baselines(result: FleetResult, tmp_path: Path) -> None:
    models = fleet_plots.histogram_models(result)
    baselines = sorted((m for m in result.means if m not in MODELS), key=lambda m: result.means[m]["mase"])
    assert models == [*MODELS, *baselines[:3]]
    figure = fleet_plots.histogram_plot(result)
    titles = [ax.get_title(loc="left") for ax in figure.axes]
    assert titles == [f"{m}: mean MASE {result.means[m]['mase']:.3f} over 12 series" for m in models]
    assert figure.axes[-1].get_xscale() == "log"
    assert fleet_plots.mase_histogram(result, tmp_path / "mase.png").read_bytes().startswith(PNG)
