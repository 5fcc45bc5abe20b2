"""Bad input, systematically: whatever flags or data file a user gives, the command either
accepts them or says what is wrong in one line with exit status 2; never a traceback.

Training is replaced by a stub that records the validated config: these tests are about
the edge (flag parsing, config validation, the data reader), not about training.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lstm_stateful import cli
from lstm_stateful.commands import run as run_command
from lstm_stateful.commands import sweep as sweep_command
from lstm_stateful.commands import tune as tune_command
from lstm_stateful.core.errors import ConfigError
from lstm_stateful.io import series_file
from lstm_stateful.render import tune_console

INTS = st.one_of(
    st.integers(-3, 3000), st.integers(), st.sampled_from(["0", "-1", "1e3", "x", "", " 4", "99999999999999"])
)
FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(["nan", "-inf", "1e-400", "abc"]))
WORDS = st.one_of(st.text(max_size=12), st.sampled_from(["lstm", "gru", "simple", "contiguous", "oldest-first"]))
COLUMNS = st.one_of(WORDS, st.lists(st.sampled_from(["x", "y", "z", "", " "]), max_size=4).map(",".join))
TRANSFORMS = st.one_of(WORDS, st.sampled_from(["none", "diff", "log-diff"]))
RANGES = st.one_of(st.text(alphabet="0123456789:,- a", max_size=10), st.sampled_from(["1:8", "1,2,4", "3:1", "0:2"]))

RUN_FLAGS = {
    "--tsteps": INTS, "--lahead": INTS, "--input-len": INTS, "--batch-size": INTS, "--epochs": INTS,
    "--units": INTS, "--seed": INTS, "--seeds": INTS, "--data-seed": INTS, "--lr": FLOATS, "--cell": WORDS,
    "--layout": WORDS, "--order": WORDS, "--task": WORDS, "--horizon": INTS, "--input": COLUMNS, "--target": WORDS,
    "--layers": INTS, "--transform": TRANSFORMS, "--season": INTS,
}  # fmt: skip
SWEEP_FLAGS = {
    **{k: v for k, v in RUN_FLAGS.items() if k not in ("--task", "--horizon", "--input", "--target", "--season")}
}
GRIDS = st.one_of(
    st.text(alphabet="lrunitscegyab=:,.0123456789-", max_size=16),
    st.sampled_from(["lr=1e-3,1e-2", "units=4,8", "cell=lstm,gru", "layers=1,2", "transform=none,diff", "lr=abc"]),
    st.sampled_from(["batch-size=1,2", "nope=1", "lr=", "units=0:2", "lahead=1,5000", "order=x", "lr=1e-3,1e-3"]),
)
SWEEP_FLAGS |= {"--tsteps": RANGES, "--lahead": RANGES, "--jobs": INTS, "--workers": INTS, "--grid": GRIDS}
SPACES = st.one_of(
    st.text(alphabet="lrunitscegyab=:,.0123456789-", max_size=20),
    st.sampled_from(["lr=1e-4:1e-2:log", "units=8:64:int", "cell=lstm,gru", "lr=1:0", "units=0:4", "x=1", "lr="]),
)
TUNE_FLAGS = {k: RUN_FLAGS[k] for k in ("--lahead", "--epochs", "--units", "--seeds", "--cell", "--layers")}
TUNE_FLAGS |= {"--space": SPACES, "--trials": INTS, "--batch": INTS, "--validation": FLOATS, "--mode": WORDS}
SWITCHES = ["--standardize", "--drop-missing", "--no-cache", "--bogus"]


def _argv(flags: dict[str, st.SearchStrategy]) -> st.SearchStrategy[list[str]]:
    pairs = st.lists(st.sampled_from(sorted(flags)).flatmap(lambda f: flags[f].map(lambda v: [f, str(v)])), max_size=6)
    switches = st.lists(st.sampled_from(SWITCHES), max_size=2)
    return st.tuples(pairs, switches).map(lambda t: [a for pair in t[0] for a in pair] + t[1])


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> list:
    """Stub out everything after validation; collect the configs that passed it."""
    accepted: list = []
    monkeypatch.setattr(run_command, "run", lambda cfg, *args, **kwargs: accepted.append(cfg))
    monkeypatch.setattr(sweep_command, "sweep", lambda spec, *args, **kwargs: accepted.append(spec))
    monkeypatch.setattr(cli, "_print_run", lambda *args: None)
    monkeypatch.setattr(cli, "_print_sweep", lambda *args: None)
    done = SimpleNamespace(search=None, trials=[], best=None, result=None, out_dir="o", study_path="s", seconds=0.0)
    monkeypatch.setattr(tune_command, "tune", lambda cfg, *args, **kwargs: accepted.append(cfg) or done)
    monkeypatch.setattr(tune_console, "print_tune_summary", lambda *args: None)
    return accepted


def _check(argv: list[str], capsys: pytest.CaptureFixture[str]) -> int:
    code = cli.main(argv)  # must not raise
    err = capsys.readouterr().err
    if code == 2:
        assert err.count("\n") == 1 and err.startswith("lstm-stateful: error: ") and "Traceback" not in err, err
    else:
        assert code == 0, (argv, code, err)
    return code


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(argv=_argv(RUN_FLAGS))
def test_run_flags(argv: list[str], no_training: list, capsys: pytest.CaptureFixture[str]) -> None:
    with tempfile.TemporaryDirectory() as out:
        before = len(no_training)
        code = _check(["run", "--out", out, *argv], capsys)
        assert (code == 0) == (len(no_training) == before + 1)  # accepted exactly when it would train


@FUZZ
@given(argv=_argv(SWEEP_FLAGS))
def test_sweep_flags(argv: list[str], no_training: list, capsys: pytest.CaptureFixture[str]) -> None:
    with tempfile.TemporaryDirectory() as out:
        _check(["sweep", "--out", out, *argv], capsys)


@FUZZ
@given(argv=_argv(TUNE_FLAGS))
def test_tune_flags(argv: list[str], no_training: list, capsys: pytest.CaptureFixture[str]) -> None:
    with tempfile.TemporaryDirectory() as out:
        before = len(no_training)
        code = _check(["tune", "--out", out, "--space", "lr=1e-3:1e-2:log", *argv], capsys)
        assert (code == 0) == (len(no_training) == before + 1)


CELLS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**30), 10**30).map(str),
    st.sampled_from(["", " ", "nan", "NA", "inf", "-", "1e999", '"3"', "'4'", "1,5", "x"]),
    st.text(max_size=6),
)
ROWS = st.lists(st.lists(CELLS, min_size=1, max_size=3), max_size=40)


def _write_csv(path: Path, header: list[str], rows: list[list[str]], comment: bool) -> None:
    lines = (["# a comment"] if comment else []) + [",".join(header)] + [",".join(r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogateescape")


@settings(max_examples=300, deadline=None)
@given(
    header=st.lists(st.sampled_from(["x", "y", "z", ""]), min_size=1, max_size=3),
    rows=ROWS,
    drop=st.booleans(),
    comment=st.booleans(),
)
def test_data_reader(header: list[str], rows: list[list[str]], drop: bool, comment: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "series.csv"
        try:
            _write_csv(path, header, rows, comment)
        except UnicodeEncodeError:
            return  # text a UTF-8 file cannot hold
        try:
            columns = series_file.read_columns(path, ("x",), "y" if "y" in header else None, drop_missing=drop)
        except ConfigError as e:
            assert e.param in ("data", "input", "target") and "\n" not in e.problem
            return
        assert columns.input.dtype == np.float64 and np.isfinite(columns.input).all()


@settings(max_examples=100, deadline=None)
@given(blob=st.binary(max_size=300), suffix=st.sampled_from([".csv", ".parquet"]))
def test_data_reader_on_any_bytes(blob: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"series{suffix}"
        path.write_bytes(blob)
        try:
            series_file.read_columns(path, ("x",))
        except ConfigError as e:
            assert "\n" not in e.problem


@FUZZ
@given(
    rows=ROWS,
    argv=_argv(
        {k: RUN_FLAGS[k] for k in ("--lahead", "--tsteps", "--task", "--horizon", "--batch-size", "--transform")}
        | {"--input": st.sampled_from(["x", "x,y", "y,x", "x,x", "x,z"]), "--season": INTS}
    ),
)
def test_run_on_any_data_file(
    rows: list[list[str]], argv: list[str], no_training: list, capsys: pytest.CaptureFixture[str]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "series.csv"
        try:
            _write_csv(path, ["x", "y"], rows, comment=False)
        except UnicodeEncodeError:
            return
        _check(
            ["run", "--out", tmp, "--data", str(path), *(["--input", "x"] if "--input" not in argv else []), *argv],
            capsys,
        )


JSON = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
KEYS = ["models", "banner", "banner_held", "floors", "config", "versions", "timings", "data_file", "format"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=st.dictionaries(st.sampled_from(KEYS), JSON, max_size=len(KEYS)) | JSON)
def test_report_on_any_results_json(doc: object, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "results.json").write_text(json.dumps(doc))
        _check(["report", tmp], capsys)
