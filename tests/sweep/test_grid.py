"""The sweep grid: ranges, grid strings, validation, point keys, groups."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from lstm_stateful.core.config import DataConfig, ExperimentConfig, ModelConfig, TrainConfig
from lstm_stateful.core.errors import ConfigError
from lstm_stateful.sweep.grid import (
    MAX_PROBLEMS_PER_PROGRAM,
    MAX_TRAININGS_PER_PROGRAM,
    Axis,
    Point,
    SweepSpec,
    groups,
    parse_grid,
    parse_range,
    point_key,
    seed_chunks,
)


def _point(tsteps: int, lahead: int) -> Point:
    return Point((("tsteps", tsteps), ("lahead", lahead)))


@pytest.mark.parametrize(
    ("text", "values"),
    [("1:8", tuple(range(1, 9))), ("3", (3,)), ("1,2,4", (1, 2, 4)), ("4,1:2,2", (1, 2, 4)), (" 2 : 3 ", (2, 3))],
)
def test_parse_range(text: str, values: tuple[int, ...]) -> None:
    assert parse_range("tsteps", text) == values


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("1:", "malformed"),
        (":3", "malformed"),
        ("a:b", "malformed"),
        ("1:2:3", "malformed"),
        ("1,,2", "malformed"),
        ("", "malformed"),
        ("1.5", "malformed"),
        ("0:3", "positive"),
        ("-2", "positive"),
        ("5:3", "empty"),
    ],
)
def test_parse_range_rejects(text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as e:
        parse_range("lahead", text)
    assert e.value.param == "lahead"


def test_parse_grid_reads_each_setting_by_its_type() -> None:
    axes = parse_grid(["lr=1e-2,1e-3", "batch-size=1:3,8", "cell=gru,lstm", "standardize=true,False", "data_seed=0,7"])
    assert axes == (
        Axis("lr", (1e-3, 1e-2)),  # numbers sorted
        Axis("batch_size", (1, 2, 3, 8)),
        Axis("cell", ("gru", "lstm")),  # choices as given
        Axis("standardize", (True, False)),
        Axis("data_seed", (0, 7)),
    )


@pytest.mark.parametrize(
    ("texts", "fragment"),
    [
        (["lr"], "'lr' is not KEY=V1,V2,..."),
        (["nope=1,2"], "'nope' is not a setting a grid can vary; the keys are amplitude, batch-size"),
        (["seeds=1,2"], "'seeds' is not a setting"),
        (["data=a.csv"], "'data' is not a setting"),
        (["lr=1e-3", "lr=1e-2"], "lr is given twice"),
        (["batch-size=2", "batch_size=4"], "batch-size is given twice"),
        (["lr=abc"], "lr=abc: 'abc' is not a number"),
        (["lr="], "lr=: give values separated by commas"),
        (["lr=1e-3,,1e-2"], "give values separated by commas"),
        (["lr=1e-3,0.001"], "lists 0.001 twice"),
        (["units=8.5"], "units=8.5: malformed range"),
        (["units=0:4"], "units=0:4: must be positive integers"),
        (["cell=lstm,rnn"], "cell=rnn: must be one of lstm, gru, simple"),
        (["standardize=yes"], "standardize=yes: must be true or false"),
        (["standardize=false,False"], "lists False twice"),
    ],
)
def test_parse_grid_rejects_in_one_line_naming_grid(texts: list[str], fragment: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_grid(texts)
    assert e.value.param == "grid" and fragment in e.value.problem and "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("grid", "base", "fragment"),
    [
        (["lr=-1,1e-3"], ExperimentConfig(), "lr=-1.0: must be a finite number > 0"),
        (["lr=nan"], ExperimentConfig(), "lr=nan: 'nan' is not a finite number"),
        (["train-ratio=0.5,1.5"], ExperimentConfig(), "train-ratio=1.5: must be in (0, 1)"),
        (["lahead=1,300"], ExperimentConfig(data=DataConfig(input_len=200)), "lahead=300: must be <= the 200 rows"),
        (["batch-size=1,400"], ExperimentConfig(data=DataConfig(input_len=200)), "batch-size=400: must be <="),
        (["standardize=true"], ExperimentConfig(), "standardize=True: needs a `data` file"),
        (
            ["units=4", "train-ratio=0.8,0.97"],
            ExperimentConfig(data=DataConfig(input_len=40, batch_size=4)),
            "at units=4, train-ratio=0.97, `batch_size` cuts the 4 test rows into 4 interleaved streams of 1",
        ),
    ],
)
def test_a_grid_point_that_does_not_fit_names_grid_and_its_key(
    grid: list[str], base: ExperimentConfig, fragment: str
) -> None:
    with pytest.raises(ConfigError) as e:
        SweepSpec(parse_grid(grid), base)
    assert e.value.param == "grid" and fragment in e.value.problem, str(e.value)


def test_ranges_keep_naming_their_own_flag() -> None:
    base = ExperimentConfig(data=DataConfig(input_len=50))
    with pytest.raises(ConfigError) as e:
        SweepSpec.ranges((1, 2), (1, 60), base)
    assert e.value.param == "lahead" and "60" in e.value.problem


def test_spec_rejects_empty_grid() -> None:
    with pytest.raises(ConfigError, match="empty"):
        SweepSpec.ranges((), (1,))


def test_spec_refuses_generated_series_settings_with_a_file() -> None:
    base = ExperimentConfig(data=DataConfig(file="x.csv", input_cols=("x",)))
    with pytest.raises(ConfigError, match="data-seed shapes the generated series") as e:
        SweepSpec(parse_grid(["data-seed=1,2"]), base)
    assert e.value.param == "grid"


def test_points_vary_the_first_axis_fastest_and_configs_take_their_values() -> None:
    spec = SweepSpec(parse_grid(["units=4,8", "cell=gru,simple"]), ExperimentConfig(train=TrainConfig(epochs=3)))
    assert [p.values for p in spec.points] == [
        (("units", 4), ("cell", "gru")),
        (("units", 8), ("cell", "gru")),
        (("units", 4), ("cell", "simple")),
        (("units", 8), ("cell", "simple")),
    ]
    cfg = spec.config(spec.points[1])
    assert cfg == dataclasses.replace(spec.base, model=ModelConfig(units=8, cell="gru"))
    assert spec.points[1].label == "units=8, cell=gru" and not spec.is_phase_diagram
    assert SweepSpec.ranges((1, 2), (3,)).is_phase_diagram


def test_a_file_points_rows_are_what_its_windows_leave() -> None:
    # 100 rows: the base (tsteps 1, lahead 1) keeps them all; lahead 5 drops 4, diff one more.
    base = ExperimentConfig(data=DataConfig(input_len=100, tsteps=1, file="x.csv", input_cols=("x",)))
    spec = SweepSpec(parse_grid(["lahead=1,5", "transform=none,diff"]), base)
    lens = {p.label: spec.config(p).data.input_len for p in spec.points}
    assert lens == {
        "lahead=1, transform=none": 100,
        "lahead=5, transform=none": 96,
        "lahead=1, transform=diff": 99,
        "lahead=5, transform=diff": 95,
    }
    with pytest.raises(ConfigError) as e:
        SweepSpec(parse_grid(["lahead=1,100"]), base)
    assert e.value.param == "grid" and "at lahead=100, `data` 'x.csv' has 100 rows" in e.value.problem


def test_a_season_longer_than_the_training_rows_is_refused_before_training() -> None:
    base = ExperimentConfig(data=DataConfig(input_len=100, season=50))
    with pytest.raises(ConfigError) as e:
        SweepSpec(parse_grid(["train-ratio=0.8,0.4"]), base)
    assert e.value.param == "grid" and "at train-ratio=0.4, `season` must be <= the 40 training rows" in str(e.value)


def test_spec_round_trips_through_dict_and_reads_earlier_specs() -> None:
    spec = SweepSpec(parse_grid(["lr=1e-3,1e-2", "cell=gru"]), ExperimentConfig(train=TrainConfig(epochs=3), seeds=4))
    assert SweepSpec.from_dict(spec.to_dict()) == spec
    ranges = SweepSpec.ranges((1, 3), (2,), ExperimentConfig(seeds=4, seed=7))
    assert SweepSpec.from_dict(ranges.to_dict()) == ranges
    earlier = {"tsteps": [1, 3], "lahead": [2], "base": ExperimentConfig(seeds=4, seed=7).to_dict()}
    earlier["base"]["data"]["input_col"] = earlier["base"]["data"].pop("input_cols") or None
    assert SweepSpec.from_dict(earlier) == ranges  # a store's spec of version 0.1: --report still redraws it


def test_point_key_ignores_seed_count_but_not_what_decides_results() -> None:
    cfg = SweepSpec.ranges((2,), (1,)).config(_point(2, 1))
    assert point_key(cfg) == point_key(dataclasses.replace(cfg, seeds=99))
    assert point_key(cfg) != point_key(dataclasses.replace(cfg, seed=1))
    assert point_key(cfg) != point_key(dataclasses.replace(cfg, train=TrainConfig(epochs=11)))
    assert point_key(cfg) != point_key(SweepSpec.ranges((2,), (2,)).config(_point(2, 2)))
    changes = ({"layout": "contiguous"}, {"order": "oldest-first"}, {"transform": "diff"}, {"season": 3})
    for change in changes:
        assert point_key(cfg) != point_key(dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, **change)))
    for model in ({"cell": "gru"}, {"layers": 2}):
        assert point_key(cfg) != point_key(dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, **model)))


def test_point_keys_of_earlier_stores_are_unchanged() -> None:
    # Golden keys written by version 0.1.0 before batch layouts, recurrent cells and data files
    # existed: stores from then are still found (no retraining, --report still works).
    assert point_key(ExperimentConfig()) == "b6491bf0722cd12872719e696b465981"
    assert point_key(SweepSpec.ranges((3,), (2,)).config(_point(3, 2))) == "cf02afed76ea62b25c55aaf606b5bb12"


def test_one_input_column_keys_as_the_single_input_col_did() -> None:
    # Before several inputs, a file's column was data.input_col: one column still hashes so
    # (the key of version 4ac0d85~1, computed by its own point_key).
    data = DataConfig(input_len=100, file="s.csv", input_cols=("close",))
    assert point_key(ExperimentConfig(data=data)) == "cb97e1f209e2ff697b2106b18e03c05c"
    two = ExperimentConfig(
        data=dataclasses.replace(data, input_cols=("close", "volume")), model=ModelConfig(n_features=2)
    )
    assert point_key(two) != point_key(ExperimentConfig(data=data))


def test_groups_share_a_program_cover_pending_and_put_expensive_first() -> None:
    spec = SweepSpec.ranges(tuple(range(1, 2 * MAX_PROBLEMS_PER_PROGRAM + 2)), (1, 4))
    pending = {p: 0 for p in spec.points if p != _point(1, 1)}
    found = groups(spec, pending)
    points = [c for g in found for c in g.points]
    assert len(points) == len(pending) and set(points) == set(pending)
    assert all(len(g.points) <= MAX_PROBLEMS_PER_PROGRAM for g in found)
    assert all(len({c.data.lahead for c in g.configs}) == 1 for g in found)
    assert [g.work for g in found] == sorted((g.work for g in found), reverse=True)
    assert found[0].configs[0].data.lahead == 4


def test_learning_rates_layouts_and_orders_share_a_program_shapes_do_not() -> None:
    grid = ["lr=1e-3,1e-2", "layout=interleaved,contiguous", "order=newest-first,oldest-first", "units=4,8"]
    spec = SweepSpec(parse_grid(grid), ExperimentConfig(data=DataConfig(input_len=200, batch_size=2), seeds=2))
    found = groups(spec, dict.fromkeys(spec.points, 0))
    assert len(found) == 2 and {len(g.points) for g in found} == {8}
    assert all(len({c.model.units for c in g.configs}) == 1 for g in found)


def test_many_seeds_split_programs_by_lanes() -> None:
    base = ExperimentConfig(seeds=MAX_TRAININGS_PER_PROGRAM)  # 2 modes: twice the lanes a program holds
    spec = SweepSpec.ranges((1, 2, 3), (1,), base)
    found = groups(spec, {spec.points[0]: 0, spec.points[1]: 0, spec.points[2]: 10})
    half, last = MAX_TRAININGS_PER_PROGRAM // 2, MAX_TRAININGS_PER_PROGRAM
    middle = 10 + (last - 10) // 2  # seeds 10 to 255 of the third point, in two near-equal parts
    assert sorted((g.points[0]["tsteps"], len(g.points), g.first_seed, g.stop_seed) for g in found) == [
        (1, 1, 0, half), (1, 1, half, last), (2, 1, 0, half), (2, 1, half, last),
        (3, 1, 10, middle), (3, 1, middle, last),
    ]  # fmt: skip
    assert all(g.trainings <= MAX_TRAININGS_PER_PROGRAM for g in found)


@pytest.mark.parametrize(("first", "stop", "cap"), [(0, 8, 256), (0, 300, 256), (5, 133, 64), (0, 1, 2), (3, 4, 256)])
def test_seed_chunks_cover_the_seeds_in_near_equal_parts(first: int, stop: int, cap: int) -> None:
    chunks = seed_chunks(first, stop, cap)
    assert chunks[0][0] == first and chunks[-1][1] == stop
    assert all(a[1] == b[0] for a, b in itertools.pairwise(chunks))
    sizes = [b - a for a, b in chunks]
    assert max(sizes) <= max(1, cap // 2) and max(sizes) - min(sizes) <= 1


def test_huge_grids_are_refused_before_they_are_built() -> None:
    with pytest.raises(ConfigError, match="tsteps: '1:100000000' holds more than 1024 values"):
        parse_range("tsteps", "1:100000000")
    with pytest.raises(ConfigError, match="lahead: the grid has 1,048,576 points; at most 16,384"):
        SweepSpec.ranges(tuple(range(1, 1025)), tuple(range(1, 1025)))
    with pytest.raises(ConfigError, match="grid: the grid has 20,480 points; at most 16,384"):
        SweepSpec(parse_grid(["units=1:160", "lahead=1:128"]))
