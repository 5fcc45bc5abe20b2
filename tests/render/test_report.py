"""report.html: it parses, embeds every figure, holds the key numbers, and a browser renders it."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from lstm_stateful.cli import main

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
    assert len(figures) == 3
    assert sorted(embedded_pngs(parser)) == sorted(p.read_bytes() for p in figures)
    text = " ".join(" ".join(parser.text).split())
    results = json.loads((run_dir / "results.json").read_text())
    for m in results["models"].values():
        assert f"{m['median_r2']:.3f}" in text and f"{m['median_test_mse']:.3e}" in text and m["verdict"] in text
    assert f"The example says: {results['banner']}" in text
    assert results["versions"]["jax"] in text and "data.input_len" in text and "1000" in text


def test_report_command_redraws_the_same_page(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = (run_dir / "report.html").read_bytes()
    (run_dir / "report.html").unlink()
    assert main(["report", str(run_dir)]) == 0
    assert (run_dir / "report.html").read_bytes() == before
    assert "report.html" in capsys.readouterr().out


def test_sweep_report(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    assert main(["sweep", "--tsteps", "1:2", "--lahead", "1", "--seeds", "2", "--epochs", "2", "--out", str(out)]) == 0
    parser = parse(out / "report.html")
    assert embedded_pngs(parser) == [(out / "phase_diagram.png").read_bytes()]
    text = " ".join(" ".join(parser.text).split())
    assert "the rule held in" in text and "base.train.epochs" in text
    assert len(re.findall(r"<tr>", (out / "report.html").read_text())) >= 4 + 1  # 2 points x 2 models


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
    assert main(["report", str(tmp_path / path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


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
    assert dom.stdout.count("<img") == 3 and "STATELESS LSTM WILL NOT CONVERGE" in dom.stdout
    shot = tmp_path / "report.png"
    subprocess.run([*flags, "--window-size=1200,2000", f"--screenshot={shot}", page], capture_output=True, timeout=120)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000  # a page, not a blank
