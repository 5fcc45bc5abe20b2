"""The one error type that user-facing code raises for bad input."""

from __future__ import annotations

import re
from collections.abc import Callable

# A parameter named inside a problem's text, in backticks: `lahead`.
_NAMED = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)`")


class ConfigError(ValueError):
    """A bad parameter value, reported as one line naming the parameter.

    ``param`` is the name a Python caller uses: a setting of ``experiment_config`` (such as
    ``lahead`` or ``batch_size``) or an argument of the function that raised. Other
    parameters named in ``problem`` are written in backticks, so that a front end can show
    them in its own terms: ``render(flag_of)`` names each through ``flag_of`` (the CLI maps
    ``batch_size`` to ``--batch-size``).
    """

    def __init__(self, param: str, problem: str) -> None:
        self.param = param
        self.problem = problem
        super().__init__(f"{param}: {problem}")

    def render(self, name_of: Callable[[str], str]) -> str:
        """``param: problem`` on one line, every parameter named through ``name_of``."""
        problem = _NAMED.sub(lambda m: name_of(m.group(1)), " ".join(self.problem.split()))
        return f"{name_of(self.param)}: {problem}"


def foreign(text: str, limit: int = 300) -> str:
    """Another library's message, fit to stand in a problem: its first line, at most ``limit``
    characters, backticks made quotes (in a problem they name parameters)."""
    first = (str(text).strip().splitlines() or [""])[0]
    return first[:limit].replace("`", "'")
