"""Panels: the clock's labels, per-series scaling, the right-aligned layout, the fleet config."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from lstm_stateful.core.errors import ConfigError
from lstm_stateful.core.panel import (
    Clock,
    Panel,
    PanelScaling,
    check_lengths,
    check_scaling_domain,
    fit_scaling,
    future_layout,
    layout,
)
from lstm_stateful.core.panel_config import FleetConfig, fleet_config


def test_clock_labels() -> None:
    assert Clock("number", 0.0, 0.1).labels(np.array([0, 28, 29])) == ["0", "2.8", "2.9"]
    assert Clock("month", 2020 * 12 + 10, 1, day=15, dates=True).labels(np.arange(3)) == [
        "2020-11-15", "2020-12-15", "2021-01-15",
    ]  # fmt: skip
    assert Clock("month", 2019 * 12, 3, dates=True).label(5) == "2020-04-01"
    hour = Clock("seconds", 1_577_836_800.0, 3600.0)
    assert hour.label(25) == "2020-01-02T01:00:00"
    assert dataclasses.replace(hour, utc=True).label(1) == "2020-01-01T01:00:00+00:00"
    assert Clock("seconds", 1_577_836_800.0, 86_400.0, dates=True).label(31) == "2020-02-01"
    with pytest.raises(ConfigError, match="time step must be"):
        Clock("number", 0.0, 0.0)


@pytest.mark.parametrize("kind", ["log", "mean-abs", "standard"])
def test_scaling_round_trips_and_uses_the_training_part_only(kind: str) -> None:
    train = [np.array([1.0, 2.0, 3.0, 4.0]), np.array([10.0, 10.0, 30.0])]
    scaling = fit_scaling(kind, train, ("a", "b"), recent=2)
    y = np.array([[1.0, 5.0, 9.0], [10.0, 20.0, 40.0]])
    np.testing.assert_allclose(scaling.to_data(scaling.to_model(y)), y, rtol=1e-12)
    if kind == "log":
        np.testing.assert_allclose(scaling.loc, [np.mean(np.log1p([3.0, 4.0])), np.mean(np.log1p([10.0, 30.0]))])
    elif kind == "mean-abs":
        np.testing.assert_allclose(scaling.scale, [2.5, 50.0 / 3])
    else:
        np.testing.assert_allclose(scaling.loc, [2.5, 50.0 / 3])
    constant = fit_scaling(kind, [np.zeros(4)], ("z",), recent=2)
    assert np.all(np.isfinite(constant.to_model(np.zeros((1, 3)))))


def test_log_scaling_refuses_negative_values() -> None:
    with pytest.raises(ConfigError, match="series 'b' has -1") as e:
        fit_scaling("log", [np.ones(3), np.array([1.0, -1.0])], ("a", "b"), 2)
    assert e.value.param == "scaling"
    panel = Panel(("a",), (np.array([1.0, 2.0, -3.0]),), np.array([0]))
    with pytest.raises(ConfigError, match="has -3"):
        check_scaling_domain("log", panel.values, panel.ids)
    check_scaling_domain("standard", panel.values, panel.ids)


def test_layout_right_aligns_series_and_masks_padding() -> None:
    values = (np.arange(1.0, 21.0), np.arange(1.0, 15.0))
    panel = Panel(("long", "short"), values, np.array([0, 10]))
    scaling = PanelScaling("standard", np.zeros(2), np.ones(2))
    shape = layout(panel, scaling, horizon=3, windows=2, period=4, lahead=2, chunk=5)
    n = shape.z.shape[1]
    assert n == shape.lead + 20
    np.testing.assert_array_equal(shape.z[0, -20:], values[0])
    np.testing.assert_array_equal(shape.z[1, -14:], values[1])
    assert not shape.present[1, : n - 14].any() and shape.present[1, n - 14 :].all()
    # Valid from each series' (period)-th value on: the value a season back exists.
    assert shape.valid[1].tolist() == [False] * (n - 14 + 4) + [True] * 10
    # Validation origin, then the two test origins, H apart, ending at the last column.
    assert shape.origins == (n - 9, n - 6, n - 3)
    assert shape.first_chunk + shape.n_chunks * 5 == shape.origins[0]
    assert shape.first_chunk >= 2 - 1 + 4  # a stateless window and a season before it
    # The phase follows each series' clock: series "short" starts at ordinal 10.
    assert shape.phase[1, n - 14] == pytest.approx((10 % 4) / 4)
    future = future_layout(panel, scaling, horizon=3, period=4, lahead=2)
    assert future.origins == (future.z.shape[1] - 3,)
    assert not future.present[:, -3:].any()
    assert future.phase[0, -3] == pytest.approx((20 % 4) / 4)


def test_lengths_and_config_are_checked() -> None:
    panel = Panel(("a", "b"), (np.ones(30), np.ones(12)), np.array([0, 0]))
    with pytest.raises(ConfigError, match=r"series 'b' has 12 values, too short: a series needs 20") as e:
        check_lengths(panel, horizon=4, windows=2, period=6, needed=20)
    assert e.value.param == "data"
    base = {"data": "f.csv", "id": "i", "time": "t", "input": "y"}
    cfg = fleet_config({**base, "horizon": 6, "season": 12})
    assert (cfg.panel.head, cfg.panel.n_features, cfg.model.n_features, cfg.panel.min_length()) == (1, 4, 4, 26)
    assert FleetConfig.from_dict(cfg.to_dict()) == cfg
    assert fleet_config({**base, "strategy": "direct", "horizon": 5}).panel.head == 5
    assert fleet_config(base).model.n_features == 1
    bad = [
        ({"input": ("y", "z")}, "input", "one value column"),
        ({"tsteps": 2}, "tsteps", "is not a setting of a panel run"),
        ({"scaling": "minmax"}, "scaling", "must be one of"),
        ({"season": 1}, "season", "an integer in"),
        ({"input": "t"}, "input", "that another of"),
        ({"stats": ("ets", "prophet")}, "stats", "must be one of"),
    ]
    for over, param, text in bad:
        with pytest.raises(ConfigError, match=text) as e:
            fleet_config({**base, **over})
        assert e.value.param == param
