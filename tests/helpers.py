"""Assertions shared by the tests of the command line."""

from __future__ import annotations

import pytest

from lstm_stateful.cli import main


def usage_error(argv: list[str], capsys: pytest.CaptureFixture[str], *fragments: str) -> str:
    """Run ``lstm-stateful argv`` in this process and check it refused: exit status 2, and
    exactly one line on stderr, the tool's error line, holding every fragment and no
    traceback. Returns that line."""
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, (argv, code, err)
    assert err.count("\n") == 1 and err.startswith("lstm-stateful: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    return err.strip()
