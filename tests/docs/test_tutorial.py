"""The tutorial notebook (docs/tutorial.ipynb): it runs top to bottom (every number its text
states is asserted inside it), its stored outputs are what the code computes now, every number
its text puts in bold is one of the facts its code records in that section, rounded as written
(and each fact is stated so), and docs/tutorial.md is what the build renders from it. Rebuild
with `make tutorial` (python docs/build_tutorial.py) after a change that moves its numbers."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import nbformat
import pytest

BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "build_tutorial.py"
REBUILD = "rebuild it with `make tutorial` (python docs/build_tutorial.py)"
# Figures the text refers to: the data, the losses, the state, the phase diagram, the real series.
MIN_FIGURES = 5
MAX_NOTEBOOK_BYTES = 1_500_000
# The text's claims: bold spans, less inline code (where ** is Python's power); a plain number
# (no thousands separators); the cell calls that record a fact by name (stated(...), verdict(...)).
BOLD = re.compile(r"\*\*(.+?)\*\*", re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
RECORDS = re.compile(r"\b(?:stated|verdict)\(\s*\"(\w+)\"")
# Bold numbers and bounds the text states now: fewer means the claims went unseen (a broken pattern).
MIN_BOLD_CLAIMS = 30


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


def _sections(nb: nbformat.NotebookNode) -> list[tuple[str, str]]:
    """(markdown, code) text of each section: the cells from one "## " heading to the next, the
    introduction first."""
    sections = [["", ""]]
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.startswith("## "):
            sections.append(["", ""])
        sections[-1][cell.cell_type == "code"] += cell.source + "\n"
    return [(markdown, code) for markdown, code in sections]


def _claims(nb: nbformat.NotebookNode) -> list[tuple[str, list[str], dict[str, float | str]]]:
    """(section heading, the bold spans with a digit in its text, the facts its code records) per section."""
    facts = build.facts_of(nb)
    claims = []
    for markdown, code in _sections(nb):
        bold = BOLD.findall(INLINE_CODE.sub("", markdown))
        recorded = {name: facts[name] for name in RECORDS.findall(code)}
        heading = markdown.partition("\n")[0]
        claims.append((heading, [b for b in bold if any(c.isdigit() for c in b)], recorded))
    return claims


def _states(written: str, fact: float | str) -> bool:
    """Whether the text's ``written`` states ``fact``: a verdict as it is, a number rounded as
    written (to its decimals, or its mantissa's in e-notation: "0.00081", "1.000", "187.6", "1.9e-05")."""
    if isinstance(fact, str):
        return written == fact
    if NUMBER.fullmatch(written) is None:
        return False
    mantissa, e, _ = written.partition("e")
    decimals = len(mantissa.partition(".")[2])
    if e:
        return float(f"{fact:.{decimals}e}") == float(written)
    return f"{fact:.{decimals}f}" == written


def test_every_bold_number_in_the_text_is_a_fact_of_its_section(stored: nbformat.NotebookNode) -> None:
    claims = _claims(stored)
    wrong = [
        f"{heading!r}: **{written}** (its facts: {facts})"
        for heading, bold, facts in claims
        for written in bold
        if not any(_states(written, fact) for fact in facts.values())
    ]
    assert not wrong, f"the text states numbers its code does not compute: {wrong}"
    assert sum(len(bold) for _, bold, _ in claims) >= MIN_BOLD_CLAIMS


def test_every_fact_is_stated_in_bold_in_its_section(stored: nbformat.NotebookNode) -> None:
    missing = [
        f"{heading!r}: {name} = {fact!r} (bold there: {bold})"
        for heading, bold, facts in _claims(stored)
        for name, fact in facts.items()
        if (not isinstance(fact, str) or any(c.isdigit() for c in fact))
        and not any(_states(written, fact) for written in bold)
    ]
    assert not missing, f"facts the text of their section does not state in bold: {missing}"
