"""Transforms: differences and references equal pandas', the target's transform inverts exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lstm_stateful.core import transform
from lstm_stateful.core.errors import ConfigError

# A positive random walk, 3 columns: the kind of series log-diff is for.
X = np.exp(np.cumsum(np.random.default_rng(7).normal(0.0, 0.05, (40, 3)), axis=0)) * [10.0, 200.0, 0.5]


@pytest.mark.parametrize("name", ["diff", "log-diff"])
def test_differences_equal_pandas(name: str) -> None:
    frame = pd.DataFrame(X if name == "diff" else np.log(X))
    ours = transform.differences(name, X)
    np.testing.assert_allclose(ours, frame.diff().to_numpy(), rtol=0, atol=1e-15)
    assert np.isnan(ours[0]).all() and ours.shape == X.shape
    # One step at a time (what the Predictor does on a raw history) gives the same rows.
    steps = np.stack([transform.step(name, X[t - 1], X[t]) for t in range(1, len(X))])
    np.testing.assert_array_equal(steps, ours[1:])


def test_none_is_the_identity() -> None:
    np.testing.assert_array_equal(transform.differences("none", X), X)
    np.testing.assert_array_equal(transform.step("none", X[0], X[1]), X[1])
    y, r = X[:, 0], X[:, 1]
    np.testing.assert_array_equal(transform.to_model("none", y, r), y)
    np.testing.assert_array_equal(transform.from_model("none", y, r), y)


def test_golden_values() -> None:
    assert transform.to_model("diff", np.array(5.0), np.array(3.0)) == 2.0
    assert transform.from_model("diff", np.array(2.0), np.array(3.0)) == 5.0
    assert transform.to_model("log-diff", np.array(np.e**3), np.array(np.e)) == pytest.approx(2.0, abs=1e-15)
    assert transform.from_model("log-diff", np.array(np.log(2.0)), np.array(3.0)) == pytest.approx(6.0, abs=1e-14)
    np.testing.assert_allclose(transform.differences("log-diff", np.array([[1.0], [np.e]]))[1], [1.0])


def test_references_equal_pandas() -> None:
    x = pd.Series(X[:, 0])
    average = x.rolling(3).mean()
    np.testing.assert_array_equal(transform.reference("forecast", X[:, 0], x.shift(-2).to_numpy()), X[:, 0])
    ours = transform.reference("moving-average", X[:, 0], average.to_numpy())
    np.testing.assert_array_equal(ours, average.shift(1).to_numpy())  # the previous average
    with pytest.raises(ValueError, match="no reference"):
        transform.reference("target", X[:, 0], X[:, 1])


@pytest.mark.parametrize("name", ["diff", "log-diff"])
def test_target_round_trips_and_broadcasts(name: str) -> None:
    y, r = X[3:, 0], X[:-3, 0]
    z = transform.to_model(name, y, r)
    np.testing.assert_allclose(transform.from_model(name, z, r), y, rtol=1e-12, atol=0)
    # Several seeds' predictions (S, n) against one reference (n,).
    seeds = np.stack([z, z + 0.01])
    back = transform.from_model(name, seeds, r)
    assert back.shape == seeds.shape
    np.testing.assert_allclose(back[0], y, rtol=1e-12, atol=0)
    assert (back[1] > y).all()


def test_require_positive_names_the_first_bad_value() -> None:
    transform.require_positive(X, ("a", "b", "c"), str)  # all positive: nothing to say
    bad = X.copy()
    bad[9, 2], bad[5, 1], bad[7, 0] = -1.0, 0.0, np.nan
    with pytest.raises(ConfigError) as e:
        transform.require_positive(bad, ("a", "b", "c"), lambda i: f"line {i + 2} of 'f.csv'")
    assert e.value.param == "transform"
    assert e.value.problem == "log-diff needs positive values; column 'b' holds 0.0 at line 7 of 'f.csv'; " + (
        "`transform` diff takes any sign"
    )
    bad[5, 1] = 1.0
    with pytest.raises(ConfigError, match=r"column 'a' holds nan at row 7"):
        transform.require_positive(bad, ("a", "b", "c"), lambda i: f"row {i}")
