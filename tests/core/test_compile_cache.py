"""The persistent compilation cache: where it lives, and a cache that cannot be made."""

from __future__ import annotations

from pathlib import Path

import pytest

from lstm_stateful.core import compile_cache


def test_default_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(compile_cache.ENV_VAR, str(tmp_path / "explicit"))
    assert compile_cache.default_cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv(compile_cache.ENV_VAR)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compile_cache.default_cache_dir() == tmp_path / "xdg" / "lstm-stateful" / "jax"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert compile_cache.default_cache_dir() == Path.home() / ".cache" / "lstm-stateful" / "jax"


def test_unusable_dir_is_reported_not_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    problem = compile_cache.enable(blocker / "cache")
    assert problem is not None and "compilation cache" in problem and "\n" not in problem


def test_enable_points_jax_at_the_dir(tmp_path: Path) -> None:
    import jax

    before = jax.config.jax_compilation_cache_dir
    try:
        assert compile_cache.enable(tmp_path / "c") is None
        assert jax.config.jax_compilation_cache_dir == str(tmp_path / "c")
        assert (tmp_path / "c").is_dir()
    finally:
        jax.config.update("jax_compilation_cache_dir", before)


def test_xla_flags_added_unless_the_user_chose() -> None:
    env: dict[str, str] = {}
    compile_cache.set_xla_flags(env)
    assert env["XLA_FLAGS"] == compile_cache.XLA_CPU_FLAG
    env = {"XLA_FLAGS": "--xla_dump_to=/tmp/x"}
    compile_cache.set_xla_flags(env)
    assert env["XLA_FLAGS"] == f"--xla_dump_to=/tmp/x {compile_cache.XLA_CPU_FLAG}"
    env = {"XLA_FLAGS": "--xla_backend_optimization_level=3"}
    compile_cache.set_xla_flags(env)
    assert env["XLA_FLAGS"] == "--xla_backend_optimization_level=3"


def test_a_second_run_compiles_nothing(tmp_path: Path) -> None:
    # Two real processes sharing a fresh cache: the first fills it, the second only reads it.
    import os
    import subprocess
    import sys

    cache = tmp_path / "cache"
    env = {**os.environ, compile_cache.ENV_VAR: str(cache)}
    args = [sys.executable, "-m", "lstm_stateful.cli", "run", "--epochs", "2", "--seeds", "2", "--input-len", "300"]

    def run(name: str) -> set[str]:
        proc = subprocess.run([*args, "--out", str(tmp_path / name)], env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        return {p.name for p in cache.rglob("*") if p.is_file()}

    first = run("first")
    assert first, "the first run wrote no compiled program"
    assert run("second") == first
