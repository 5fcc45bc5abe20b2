"""The one error type that user-facing code raises for bad input."""

from __future__ import annotations


class ConfigError(ValueError):
    """A bad parameter value, reported as one line naming the parameter.

    ``param`` is the user-facing name (a CLI flag such as ``--lahead``), so the CLI can
    print it verbatim and exit with status 2.
    """

    def __init__(self, param: str, problem: str) -> None:
        self.param = param
        self.problem = problem
        super().__init__(f"{param}: {problem}")
