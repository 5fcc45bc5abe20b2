"""A search's spaces: parsed, typed, refused with one line on ``space``, checked against the
other settings; and the validation problem, a prefix of the training rows."""

from __future__ import annotations

import dataclasses

import pytest

from lstm_stateful.cli import flag_of
from lstm_stateful.core.config import experiment_config, split_sizes
from lstm_stateful.core.errors import ConfigError
from lstm_stateful.sweep.space import Dimension, Search, parse_space, raw_rows, validation_config


@pytest.mark.parametrize(
    ("text", "dim"),
    [
        ("lr=1e-4:1e-2:log", Dimension("lr", "float", 1e-4, 1e-2, True)),
        ("lr=0.001:0.01", Dimension("lr", "float", 0.001, 0.01)),
        ("units=8:64:int", Dimension("units", "int", 8, 64)),
        ("units=8:64", Dimension("units", "int", 8, 64)),
        ("units=8:64:log", Dimension("units", "int", 8, 64, True)),
        ("layers = 1 : 3 : int", Dimension("layers", "int", 1, 3)),
        ("cell=lstm,gru", Dimension("cell", "choice", choices=("lstm", "gru"))),
        ("batch-size=1,2,4", Dimension("batch_size", "choice", choices=(1, 2, 4))),
        ("lr=1e-3,3e-3", Dimension("lr", "choice", choices=(1e-3, 3e-3))),
        ("standardize=True,false", Dimension("standardize", "choice", choices=(True, False))),
        ("epochs=5", Dimension("epochs", "choice", choices=(5,))),
    ],
)
def test_spaces_parse_to_typed_dimensions(text: str, dim: Dimension) -> None:
    (parsed,) = parse_space([text])
    assert parsed == dim
    assert all(type(v) is type(w) for v, w in zip(parsed.extremes, dim.extremes, strict=True))
    assert parse_space([parsed.text]) == (dim,)  # the canonical text reads back the same


@pytest.mark.parametrize(
    ("texts", "fragment"),
    [
        ((), "at least one"),
        (("lr",), "malformed 'lr'"),
        (("lr=",), "malformed"),
        (("=1:2",), "malformed"),
        (("foo=1,2",), "'foo' is not a setting a search can vary; the keys are batch-size, cell, epochs"),
        (("tsteps=1:3",), "'tsteps' decides the task or the data"),
        (("data=a.csv,b.csv",), "'data' decides the task or the data"),
        (("units=2:4", "units=8,16"), "searches 'units' twice"),
        (("batch-size=1,2", "batch_size=4"), "searches 'batch_size' twice"),
        (("lr=1e-2:1e-4",), "'lr=1e-2:1e-4' is reversed"),
        (("units=64:8:int",), "is reversed"),
        (("lr=0:1e-2:log",), "a log scale needs bounds > 0, got 0.0"),
        (("units=-1:8:log",), "a log scale needs bounds > 0, got -1"),
        (("lr=1e-4:1e-2:lg",), "malformed range"),
        (("lr=1e-4:1e-2:log:log",), "malformed range"),
        (("lr=1e-4:1e-2:3",), "malformed range"),
        (("cell=lstm:gru",), "cell takes one of its values, not a range"),
        (("standardize=0:1",), "not a range"),
        (("lr=1:2:int",), ":int is for integer settings"),
        (("units=8.5:64",), "'8.5' is not an integer"),
        (("units=a,b",), "'a' is not an integer"),
        (("lr=x:1",), "'x' is not a number"),
        (("lr=nan:1",), "'nan' is not a finite number"),
        (("lr=1e-3,inf",), "'inf' is not a finite number"),
        (("standardize=yes,no",), "standardize=yes: must be true or false"),
        (("cell=lstm,,gru",), "malformed list"),
        (("cell=lstm,lstm",), "lists lstm twice"),
        (("units=8,8",), "lists 8 twice"),
    ],
)
def test_bad_spaces_are_one_line_on_space(texts: tuple[str, ...], fragment: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_space(texts)
    assert e.value.param == "space" and fragment in e.value.problem, e.value.problem
    line = e.value.render(flag_of)
    assert line.startswith("--space: ") and "\n" not in line


SMALL = {"input_len": 100, "epochs": 1}
# At batch size 50 the run trains on one batch: 80% of it is not a batch.
ONE_BATCH = {"input_len": 100, "tsteps": 1, "epochs": 1}


@pytest.mark.parametrize(
    ("space", "settings", "fragment"),
    [
        (
            "batch-size=1,1000",
            SMALL,
            "batch-size=1000 (of 'batch-size=1,1000') makes an impossible config: --batch-size must",
        ),
        ("cell=lstm,tree", SMALL, "--space: cell=tree: must be one of lstm, gru, simple"),
        ("standardize=true,false", SMALL, "standardize=true (of 'standardize=true,false') makes an impossible config"),
        ("lahead=1:500", SMALL, "lahead=500 (of 'lahead=1:500:int') makes an impossible config: --lahead"),
        ("layers=0:2", SMALL, "layers=0 (of 'layers=0:2:int') makes an impossible config: --layers"),
        ("units=2,4", {**SMALL, "units": 3}, "searches 'units', which --units also sets"),
        # Possible for the run, yet its training part would not fill a batch:
        ("batch-size=1,50", ONE_BATCH, "batch-size=50 (of 'batch-size=1,50') makes an impossible config: --validation"),
    ],
)
def test_every_value_of_a_space_must_make_a_config(space: str, settings: dict, fragment: str) -> None:
    with pytest.raises(ConfigError) as e:
        Search(parse_space([space]), settings)
    assert e.value.param == "space"
    assert fragment in e.value.render(flag_of), e.value.render(flag_of)


def test_a_batch_size_possible_for_the_run_but_not_for_its_validation() -> None:
    cfg = experiment_config({**ONE_BATCH, "batch_size": 50})  # the run itself is possible
    with pytest.raises(ConfigError) as e:
        validation_config(cfg, 0.2)
    assert e.value.param == "validation" and "of the 50 training rows" in e.value.problem


@pytest.mark.parametrize(
    ("kwargs", "param"), [({"validation": 1.0}, "validation"), ({"validation": 0}, "validation"),
                          ({"validation": True}, "validation"), ({"mode": "both"}, "mode")],
)  # fmt: skip
def test_bad_scoring_names_its_parameter(kwargs: dict, param: str) -> None:
    with pytest.raises(ConfigError) as e:
        Search(parse_space(["units=2,4"]), SMALL, **kwargs)
    assert e.value.param == param


def test_the_validation_problem_is_the_training_rows_alone() -> None:
    cfg = experiment_config({"input_len": 203, "batch_size": 4, "lahead": 3})
    n_train = split_sizes(cfg.data)[0]
    val = validation_config(cfg, 0.25)
    assert n_train == 160 and val.data.input_len == 160
    assert split_sizes(val.data) == (120, 40)  # the last quarter of the training rows scores
    assert dataclasses.replace(val, data=cfg.data) == cfg  # nothing else changes
    assert raw_rows(val) == 160 + cfg.data.to_drop
    with pytest.raises(ConfigError) as e:
        validation_config(cfg, 0.01)  # 160 rows: 1.6 of them, not a batch of 4
    assert e.value.param == "validation"


def test_a_search_identity_holds_what_decides_a_trials_value() -> None:
    search = Search(parse_space(["units=2,4"]), SMALL)
    same = Search(parse_space(["units = 2,4"]), dict(SMALL))
    assert search.identity() == same.identity()
    others = [
        Search(parse_space(["units=2,8"]), SMALL),
        Search(parse_space(["units=2,4"]), {**SMALL, "epochs": 2}),
        Search(parse_space(["units=2,4"]), SMALL, validation=0.3),
        Search(parse_space(["units=2,4"]), SMALL, mode="stateless"),
    ]
    assert len({search.identity(), *(o.identity() for o in others)}) == 5
