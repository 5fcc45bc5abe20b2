"""The tutorial notebook (docs/tutorial.ipynb): it runs top to bottom (every number its text
states is asserted inside it), its stored outputs are what the code computes now, and
docs/tutorial.md is what the build renders from it. Rebuild with `make tutorial`
(python docs/build_tutorial.py) after a change that moves its numbers."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import nbformat
import pytest

BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "build_tutorial.py"
REBUILD = "rebuild it with `make tutorial` (python docs/build_tutorial.py)"
# Figures the text refers to: the data, the losses, the state, the phase diagram, the real series.
MIN_FIGURES = 5
MAX_NOTEBOOK_BYTES = 1_500_000


def _load_build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_tutorial", BUILD_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _load_build()


@pytest.fixture(scope="module")
def stored() -> nbformat.NotebookNode:
    return nbformat.read(build.NOTEBOOK, as_version=4)


@pytest.fixture(scope="module")
def fresh(stored: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of the stored notebook executed now, as the build executes it: a cell that
    raises (a stated number that no longer holds among them) fails every test that uses it."""
    return build.executed(stored)


def _outputs(nb: nbformat.NotebookNode) -> list[tuple[str, list[str]]]:
    """(cell id, its text outputs: stdout streams and plain-text results) for every code cell."""
    texts = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            out = [o.text if o.output_type == "stream" else o.data.get("text/plain", "") for o in cell.outputs]
            texts.append((cell.id, out))
    return texts


def test_the_stored_notebook_carries_every_output(stored: nbformat.NotebookNode) -> None:
    code = [c for c in stored.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), f"not executed in order: {REBUILD}"
    assert all(c.outputs for c in code), f"a code cell has no output: {REBUILD}"
    kinds = [o.output_type for c in code for o in c.outputs]
    assert "error" not in kinds
    assert all(o.name == "stdout" for c in code for o in c.outputs if o.output_type == "stream"), "stderr stored"
    figures = [o for c in code for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(figures) >= MIN_FIGURES
    assert build.NOTEBOOK.stat().st_size < MAX_NOTEBOOK_BYTES
    # As the build writes it: no cell timings, nbformat's layout (so a rebuild changes nothing).
    assert all("execution" not in c.metadata for c in code)
    assert build.NOTEBOOK.read_text() == build.notebook_text(stored)


def test_the_markdown_is_rendered_from_the_stored_notebook(stored: nbformat.NotebookNode) -> None:
    markdown, figures = build.render_markdown(stored)
    assert build.MARKDOWN.read_text() == markdown, f"docs/tutorial.md is not the stored notebook's: {REBUILD}"
    on_disk = {f"{build.FIGURES_DIR}/{p.name}": p.read_bytes() for p in (build.DOCS / build.FIGURES_DIR).iterdir()}
    assert on_disk.keys() == figures.keys()
    assert all(on_disk[name] == data for name, data in figures.items())
    assert len(figures) >= MIN_FIGURES
    assert all(f"]({name})" in markdown for name in figures)


def test_the_stored_facts_are_what_the_code_computes_now(
    stored: nbformat.NotebookNode, fresh: nbformat.NotebookNode
) -> None:
    facts = build.facts_of(fresh)
    assert len(facts) >= 20
    assert build.facts_of(stored) == facts, f"the stored numbers are stale: {REBUILD}"


def test_every_stored_output_is_what_the_code_prints_now(
    stored: nbformat.NotebookNode, fresh: nbformat.NotebookNode
) -> None:
    for (cell, was), (_, now) in zip(_outputs(stored), _outputs(fresh), strict=True):
        assert was == now, f"cell {cell!r} prints something else now: {REBUILD}"
