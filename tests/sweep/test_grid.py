"""The sweep grid: ranges, validation, point keys, groups."""

from __future__ import annotations

import dataclasses

import pytest

from lstm_stateful.core.config import DataConfig, ExperimentConfig, TrainConfig
from lstm_stateful.core.errors import ConfigError
from lstm_stateful.sweep.grid import MAX_TSTEPS_PER_GROUP, Point, SweepSpec, groups, parse_range, point_key


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


def test_spec_rejects_points_beyond_the_series() -> None:
    base = ExperimentConfig(data=DataConfig(input_len=50))
    with pytest.raises(ConfigError) as e:
        SweepSpec((1, 2), (1, 60), base)
    assert e.value.param == "lahead" and "60" in e.value.problem


def test_spec_rejects_empty_grid() -> None:
    with pytest.raises(ConfigError, match="empty"):
        SweepSpec((), (1,))


def test_spec_round_trips_through_dict() -> None:
    spec = SweepSpec((1, 3), (2,), ExperimentConfig(train=TrainConfig(epochs=3), seeds=4, seed=7))
    assert SweepSpec.from_dict(spec.to_dict()) == spec


def test_point_key_ignores_seed_count_but_not_what_decides_results() -> None:
    cfg = SweepSpec((2,), (1,)).config(Point(2, 1))
    assert point_key(cfg) == point_key(dataclasses.replace(cfg, seeds=99))
    assert point_key(cfg) != point_key(dataclasses.replace(cfg, seed=1))
    assert point_key(cfg) != point_key(dataclasses.replace(cfg, train=TrainConfig(epochs=11)))
    assert point_key(cfg) != point_key(SweepSpec((2,), (2,)).config(Point(2, 2)))
    for change in ({"layout": "contiguous"}, {"order": "oldest-first"}):
        assert point_key(cfg) != point_key(dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, **change)))
    assert point_key(cfg) != point_key(dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, cell="gru")))


def test_point_keys_of_earlier_stores_are_unchanged() -> None:
    # Golden keys written by version 0.1.0 before batch layouts, recurrent cells and data files
    # existed: stores from then are still found (no retraining, --report still works).
    assert point_key(ExperimentConfig()) == "b6491bf0722cd12872719e696b465981"
    assert point_key(SweepSpec((3,), (2,)).config(Point(3, 2))) == "cf02afed76ea62b25c55aaf606b5bb12"


def test_groups_share_lahead_cover_pending_and_put_expensive_first() -> None:
    spec = SweepSpec(tuple(range(1, 2 * MAX_TSTEPS_PER_GROUP + 2)), (1, 4))
    pending = set(spec.points) - {Point(1, 1)}
    found = groups(spec, pending)
    points = [c for g in found for c in g.points]
    assert len(points) == len(pending) and set(points) == pending
    assert all(len(g.tsteps) <= MAX_TSTEPS_PER_GROUP for g in found)
    assert [g.work for g in found] == sorted((g.work for g in found), reverse=True)
    assert found[0].lahead == 4


def test_huge_grids_are_refused_before_they_are_built() -> None:
    with pytest.raises(ConfigError, match="tsteps: '1:100000000' holds more than 1024 values"):
        parse_range("tsteps", "1:100000000")
    with pytest.raises(ConfigError, match="lahead: the grid has 1,048,576 points; at most 16,384"):
        SweepSpec(tuple(range(1, 1025)), tuple(range(1, 1025)))
