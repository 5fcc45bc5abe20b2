"""Build the tutorial: execute ``docs/tutorial.ipynb`` in place and render ``docs/tutorial.md``.

    python docs/build_tutorial.py        # what `make tutorial` runs

The notebook runs top to bottom in a fresh kernel of this interpreter, inside a temporary
directory (the run, sweep and model directories it writes land there and are removed), on
the CPU with the command line's XLA flags and an empty compilation cache of its own, so
that it computes what ``make test`` computes (tests/docs/test_tutorial.py executes it the
same way). A cell that raises, an assertion on a stated number among them, stops the build
before anything is written.

The notebook is saved with its outputs, figures included, less what changes from one
execution to the next (cell timings, where the kernel cut a cell's printing), so that
building twice gives the same file. Then
``tutorial.md`` is rendered from it by nbconvert, its figures extracted to
``tutorial_files/`` (figures no longer produced are removed). Every file is written
atomically.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbconvert import MarkdownExporter

from lstm_stateful.core import compile_cache
from lstm_stateful.io.atomic import write_atomic, write_bytes_atomic

DOCS = Path(__file__).resolve().parent
NOTEBOOK = DOCS / "tutorial.ipynb"
MARKDOWN = DOCS / "tutorial.md"
FIGURES_DIR = "tutorial_files"  # beside tutorial.md, named in its image links
# Seconds any one cell may take (the whole notebook takes about 30 s on a 2-core CPU).
CELL_TIMEOUT_S = 300
# The tag of the cell whose output is the JSON dict of every number the text states.
FACTS_TAG = "facts"


def kernel_env(cache_dir: Path) -> dict[str, str]:
    """The kernel's environment: this one, on the CPU (where the stated numbers were measured),
    with the XLA flags the command line sets, a compilation cache of its own, and inline figures."""
    env = dict(os.environ)
    env["JAX_PLATFORMS"] = "cpu"
    env[compile_cache.ENV_VAR] = str(cache_dir)
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    compile_cache.set_xla_flags(env)
    return env


def execute(nb: nbformat.NotebookNode, workdir: Path) -> nbformat.NotebookNode:
    """Run every cell of ``nb`` (in place) with ``workdir`` as the kernel's working directory;
    a cell that raises raises ``nbclient.exceptions.CellExecutionError``. Returns ``nb``."""
    cache = workdir / ".jax-cache"
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},
        record_timing=False,  # timings would make every build a different file
    )
    client.execute(env=kernel_env(cache))
    return strip_volatile(nb)


def strip_volatile(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop what differs between two executions of the same code: cell execution timings,
    the interpreter's patch version, and where a cell's printing was cut into separate
    outputs (that depends on when the kernel flushed: consecutive stream outputs of one
    stream are joined)."""
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = _joined_streams(cell.outputs)
    nb.metadata.get("language_info", {}).pop("version", None)
    return nb


def _joined_streams(outputs: list) -> list:
    """``outputs`` with each run of consecutive stream outputs of the same stream made one."""
    joined: list = []
    for out in outputs:
        last = joined[-1] if joined else None
        if last is not None and out.output_type == last.output_type == "stream" and out.name == last.name:
            last.text += out.text
        else:
            joined.append(out)
    return joined


def executed(source: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``source`` executed in a temporary directory, removed afterwards."""
    nb = copy.deepcopy(source)
    with tempfile.TemporaryDirectory(prefix="lstm-stateful-tutorial-") as tmp:
        return execute(nb, Path(tmp))


def notebook_text(nb: nbformat.NotebookNode) -> str:
    """The ``.ipynb`` file's text (nbformat's own layout, keys sorted), ending in a newline."""
    nbformat.validate(nb)
    return nbformat.writes(nb).rstrip("\n") + "\n"


def render_markdown(nb: nbformat.NotebookNode) -> tuple[str, dict[str, bytes]]:
    """``tutorial.md``'s text and its figures, by name relative to docs/ (``tutorial_files/...``)."""
    resources = {"output_files_dir": FIGURES_DIR, "unique_key": NOTEBOOK.stem}
    body, out = MarkdownExporter().from_notebook_node(nb, resources=resources)
    return body.rstrip("\n") + "\n", dict(out.get("outputs", {}))


def facts_of(nb: nbformat.NotebookNode) -> dict:
    """The dict the ``facts``-tagged cell printed: every number the text states."""
    cells = [c for c in nb.cells if FACTS_TAG in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"expected one cell tagged {FACTS_TAG!r}, found {len(cells)}")
    text = "".join(o.get("text", "") for o in cells[0].outputs if o.output_type == "stream" and o.name == "stdout")
    return json.loads(text)


def write(nb: nbformat.NotebookNode, docs: Path = DOCS) -> list[Path]:
    """Write the executed notebook, its markdown and figures under ``docs``; remove figures
    the markdown no longer links. Returns the paths written."""
    markdown, figures = render_markdown(nb)
    figures_dir = docs / FIGURES_DIR
    figures_dir.mkdir(exist_ok=True)
    written = []
    for name, data in sorted(figures.items()):
        write_bytes_atomic(docs / name, data)
        written.append(docs / name)
    write_atomic(docs / MARKDOWN.name, markdown)
    write_atomic(docs / NOTEBOOK.name, notebook_text(nb))
    for old in figures_dir.iterdir():
        if old not in written and old.is_file():
            old.unlink()
    return [*written, docs / MARKDOWN.name, docs / NOTEBOOK.name]


def main() -> int:
    start = time.perf_counter()
    nb = executed(nbformat.read(NOTEBOOK, as_version=4))
    seconds = time.perf_counter() - start
    paths = write(nb)
    names = ", ".join(str(p.relative_to(DOCS.parent)) for p in paths[-2:])
    print(
        f"Executed {NOTEBOOK.relative_to(DOCS.parent)} in {seconds:.1f} s; wrote {names} and {len(paths) - 2} figures"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
