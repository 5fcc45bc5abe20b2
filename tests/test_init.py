"""The public API: every exported name resolves, lazily."""

from __future__ import annotations

import lstm_stateful


def test_every_export_resolves() -> None:
    for name in lstm_stateful.__all__:
        assert getattr(lstm_stateful, name) is not None, name
