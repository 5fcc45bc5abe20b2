"""report.html: it parses, embeds every figure, holds the key numbers (the baselines and
skills too), and a browser renders it."""

from __future__ import annotations

import base64
import csv
import dataclasses
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from lstm_stateful.cli import main
from lstm_stateful.render.report import write_report
from lstm_stateful.render.sweep_report import write_sweep_files
from lstm_stateful.sweep.grid import SweepSpec, parse_grid, point_key
from lstm_stateful.sweep.store import Record
from tests.helpers import usage_error

VOID = {"meta", "img", "br", "hr", "link", "input"}


class StrictParser(HTMLParser):
    """Every element closed in order; collects img sources and the text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.images: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append(dict(attrs)["src"] or "")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack.pop() == tag, f"</{tag}> closes nothing open"

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(path: Path) -> StrictParser:
    parser = StrictParser()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    assert parser.stack == [], f"unclosed: {parser.stack}"
    return parser


def embedded_pngs(parser: StrictParser) -> list[bytes]:
    prefix = "data:image/png;base64,"
    assert all(src.startswith(prefix) for src in parser.images)  # nothing fetched
    return [base64.b64decode(src[len(prefix) :]) for src in parser.images]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "run"
    assert main(["run", "--out", str(out), "--seeds", "3", "--epochs", "3"]) == 0
    return out


def test_run_report_embeds_every_figure_and_the_numbers(run_dir: Path) -> None:
    parser = parse(run_dir / "report.html")
    figures = sorted(run_dir.glob("*.png"))
    assert len(figures) == 4
    assert sorted(embedded_pngs(parser)) == sorted(p.read_bytes() for p in figures)
    text = " ".join(" ".join(parser.text).split())
    results = json.loads((run_dir / "results.json").read_text())
    for m in results["models"].values():
        assert f"{m['median_r2']:.3f}" in text and f"{m['median_test_mse']:.3e}" in text and m["verdict"] in text
    assert f"The example says: {results['banner']}" in text
    for mode, baselines in results["baselines"].items():
        skill = results["models"][mode]["skill"]
        assert f"{skill['median']:.4g}" in text and skill["verdict"] in text
        assert f"{skill['interval'][0]:.4g} to {skill['interval'][1]:.4g}" in text
        assert all(f"{mse:.3e}" in text for mse in baselines.values())
    assert results["versions"]["jax"] in text and "data.input_len" in text and "1000" in text


def test_report_command_redraws_the_same_page(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = (run_dir / "report.html").read_bytes()
    (run_dir / "report.html").unlink()
    assert main(["report", str(run_dir)]) == 0
    assert (run_dir / "report.html").read_bytes() == before
    assert "report.html" in capsys.readouterr().out


def test_a_run_written_before_the_baselines_still_has_a_page(run_dir: Path, tmp_path: Path) -> None:
    old = tmp_path / "old"
    shutil.copytree(run_dir, old)
    results = json.loads((old / "results.json").read_text())
    del results["baselines"]
    for m in results["models"].values():
        del m["skill"]
        for s in m["per_seed"]:
            del s["skill"]
    (old / "results.json").write_text(json.dumps(results))
    text = " ".join(" ".join(parse(write_report(old)).text).split())
    assert "Baselines" not in text and results["models"]["stateful"]["verdict"] in text


def test_sweep_report(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    assert main(["sweep", "--tsteps", "1:2", "--lahead", "1", "--seeds", "2", "--epochs", "2", "--out", str(out)]) == 0
    parser = parse(out / "report.html")
    assert embedded_pngs(parser) == [(out / "phase_diagram.png").read_bytes()]
    text = " ".join(" ".join(parser.text).split())
    assert "the rule held in" in text and "base.train.epochs" in text
    assert len(re.findall(r"<tr>", (out / "report.html").read_text())) >= 4 + 1  # 2 points x 2 models


SPEC = SweepSpec.ranges((1, 2, 3, 4), (1, 2, 3, 4))
KEYS = {(p["tsteps"], p["lahead"]): point_key(SPEC.config(p)) for p in SPEC.points}


def _record(tsteps: int, lahead: int, mode: str, seed: int, mse: float) -> Record:
    var, floor = 1e-3, 1e-3 * max(tsteps - lahead, 0) / tsteps**2
    return Record(
        config_hash=KEYS[tsteps, lahead], seed_index=seed, mode=mode, tsteps=tsteps, lahead=lahead, config="{}",
        mse=mse, r2=1 - mse / var, converged=bool(1 - mse / var >= 0.9), floor=floor if mode == "stateless" else 0.0,
        window_floor=floor, zero_floor=var, train_loss=(mse,), val_loss=(mse,), group_s=1.0,
        baselines=(("mean", var), ("persistence", 2 * var), ("linear", max(floor, 1e-12))),
    )  # fmt: skip


# In the made-up sweep below, every stateless seed diverged at ALL_DIVERGED, and the stateless
# model converged at RULE_FAILED although lahead < tsteps there; elsewhere it did as the rule says.
ALL_DIVERGED, RULE_FAILED = (3, 1), (2, 1)


def _made_up_mse(tsteps: int, lahead: int, mode: str, rng: np.random.Generator) -> float:
    """Full-precision scores of every size: converged ones from 1e-10 up, the others near
    the zero predictor's 1e-3 (R² slightly either side of 0)."""
    if mode == "stateless" and (tsteps, lahead) == ALL_DIVERGED:
        return float("nan")
    if mode == "stateless" and lahead < tsteps and (tsteps, lahead) != RULE_FAILED:
        return float(rng.uniform(0.9e-3, 1.1e-3))
    return float(10 ** rng.uniform(-10, -5))


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4 x 4 sweep's directory, 3 seeds, from made-up records (no training)."""
    out = tmp_path_factory.mktemp("sweep") / "made-up"
    out.mkdir()
    rng = np.random.default_rng(0)
    points = [(t, la, mode) for t in range(1, 5) for la in range(1, 5) for mode in ("stateful", "stateless")]
    records = [
        _record(t, la, mode, seed, _made_up_mse(t, la, mode, rng)) for t, la, mode in points for seed in range(3)
    ]
    write_sweep_files(SPEC, records, out)
    write_report(out)
    return out


def test_sweep_report_counts_diverged_points_as_unchecked(sweep_dir: Path) -> None:
    text = " ".join(" ".join(parse(sweep_dir / "report.html").text).split())
    # 16 stateless points: 15 checked, of which the rule failed at RULE_FAILED only
    assert "the rule held in 14 of 15 grid points; 1 cannot be checked (every stateless seed diverged)" in text
    assert "this did NOT hold" in text


def test_sweep_table_shows_each_points_skill_over_its_best_baseline(sweep_dir: Path) -> None:
    page = (sweep_dir / "report.html").read_text(encoding="utf-8")
    table = page[page.index("Every grid point") :].split("</table>")[0]
    assert "best baseline" in table and "median skill" in table and "skill interval" in table
    with (sweep_dir / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    cells = [re.findall(r"<td[^>]*>([^<]*)</td>", tr) for tr in table.split("<tr>")[2:]]
    assert len(cells) == len(rows) == 32
    for row, shown in zip(rows, cells, strict=True):
        assert shown[-3] == row["best_baseline"]
        assert shown[-2] == ("—" if not row["skill_median"] else f"{float(row['skill_median']):#.4g}")


def _significant_digits(number: str) -> int:
    mantissa = number.lstrip("-").split("e")[0].replace(".", "")
    return len(mantissa.lstrip("0")) or 1


def test_sweep_table_rounds_to_4_significant_digits_and_keeps_full_precision_in_tooltips(sweep_dir: Path) -> None:
    page = (sweep_dir / "report.html").read_text(encoding="utf-8")
    table = page[page.index("Every grid point") :].split("</table>")[0]
    shown = re.findall(r"<td[^>]*>([^<]*)</td>", table)
    assert len(shown) >= 32 * 10  # 16 points x 2 models, ten columns or more
    numbers = [n for text in shown for n in re.findall(r"-?[0-9][0-9.]*(?:e[-+][0-9]+)?", text)]
    assert numbers and max(_significant_digits(n) for n in numbers) <= 4, numbers
    tooltips = set(re.findall(r'title="([^"]*)"', table))
    fields = ("converged_fraction", "r2_median", "r2_ci95_low", "r2_ci95_high", "mse_median", "floor")
    with (sweep_dir / "summary.csv").open() as f:
        full = [r[k] for r in csv.DictReader(f) for k in fields if r[k]]
    missing = [v for v in full if not any(v in t.split(" to ") for t in tooltips)]
    assert not missing, f"not on the page: {missing[:5]}"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("absent", "PATH: no such directory"),
        (".", "holds neither a run"),
        ("edited", "cannot be read as lstm-stateful wrote it"),
    ],
)
def test_report_bad_path(tmp_path: Path, path: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "edited").mkdir()
    (tmp_path / "edited" / "results.json").write_text('{"models": 1}')
    usage_error(["report", str(tmp_path / path)], capsys, message)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Headless, offline: without these, Chromium tries the network and Google's services at start.
CHROMIUM_FLAGS = [
    *("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"),
    *("--disable-background-networking", "--disable-component-update", "--disable-sync"),
]


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs Debian's chromium)")
def test_chromium_renders_the_report(run_dir: Path, tmp_path: Path) -> None:
    page = (run_dir / "report.html").resolve().as_uri()
    flags = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*flags, "--dump-dom", page], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<img") == 4 and "STATELESS LSTM WILL NOT CONVERGE" in dom.stdout
    shot = tmp_path / "report.png"
    subprocess.run([*flags, "--window-size=1200,2000", f"--screenshot={shot}", page], capture_output=True, timeout=120)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000  # a page, not a blank


# Appended to a copy of a page (the page itself has no script): writes how wide the page's
# content is and how wide the window shows it, once everything (the figures too) is laid out.
MEASURE = """<script>addEventListener("load", () => { const p = document.createElement("pre"); p.id = "width";
p.textContent = document.documentElement.scrollWidth + " " + document.documentElement.clientWidth;
document.body.append(p); });</script>"""
WINDOW_WIDTH = 1200


def page_width(page: Path, tmp_path: Path) -> tuple[int, int]:
    """(content width, visible width) in CSS pixels of ``page`` in a 1,200-pixel-wide window;
    content wider than visible means a horizontal scroll bar."""
    measured = tmp_path / f"measured-{page.parent.name}.html"
    measured.write_text(page.read_text(encoding="utf-8").replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    flags = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={WINDOW_WIDTH},900"]
    dom = subprocess.run([*flags, "--dump-dom", measured.as_uri()], capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="width">(\d+) (\d+)</pre>', dom.stdout)
    assert found, dom.stderr[-2000:]
    return int(found[1]), int(found[2])


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs Debian's chromium)")
@pytest.mark.parametrize("page", ["run", "sweep", "run with a long file name"])
def test_report_fits_a_1200_pixel_window(
    page: str, run_dir: Path, sweep_dir: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    directory = sweep_dir if page == "sweep" else run_dir
    if page == "run with a long file name":  # a name with neither space nor slash to break the line at
        directory = tmp_path_factory.mktemp("long") / "run"
        shutil.copytree(run_dir, directory)
        results = json.loads((directory / "results.json").read_text())
        results["config"]["data"]["file"] = "/data/" + "hourly_readings_of_the_plant" * 8 + ".csv"
        (directory / "results.json").write_text(json.dumps(results))
        write_report(directory)
    content, visible = page_width(directory / "report.html", tmp_path)
    assert visible <= WINDOW_WIDTH and content <= visible, f"{content} px of content in a {visible} px window"


def test_a_sweep_over_other_settings_shows_them_and_its_figure(tmp_path: Path) -> None:
    spec = SweepSpec(parse_grid(["units=4,8", "cell=lstm,gru"]))
    records = [
        dataclasses.replace(_record(2, 1, mode, seed, 1e-4 * (i + 1)), config_hash=point_key(spec.config(p)))
        for i, p in enumerate(spec.points) for mode in ("stateful", "stateless") for seed in range(2)
    ]  # fmt: skip
    write_sweep_files(spec, records, tmp_path)
    parser = parse(write_report(tmp_path))
    assert embedded_pngs(parser) == [(tmp_path / "scores.png").read_bytes()]
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    table = page[page.index("Every grid point") :].split("</table>")[0]
    heads = re.findall(r"<th[^>]*>([^<]*)</th>", table)
    assert heads[:4] == ["units", "cell", "tsteps", "lahead"]
    first = re.findall(r"<td[^>]*>([^<]*)</td>", table.split("<tr>")[2])
    assert first[:5] == ["4", "lstm", "2", "1", "stateful"]
