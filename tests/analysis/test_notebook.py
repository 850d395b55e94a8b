"""notebooks/explore.ipynb run as a user runs it: by a real kernel (nbclient) in notebooks/,
Jupyter's working directory, on a cube named relative to the repository root. It must
show its figures inline, and its outputs must hold no traceback and no warning."""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "explore.ipynb"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def execute(cube: str) -> nbformat.NotebookNode:
    """The notebook executed from notebooks/ with FARM_NOTEBOOK_CUBE=cube; execution stops
    at the first failing cell (its error is in the outputs)."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    try:
        client.execute(env={**os.environ, "FARM_NOTEBOOK_CUBE": cube})
    except CellExecutionError:
        pass
    return nb


def outputs(nb: nbformat.NotebookNode) -> list[dict]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def texts(nb: nbformat.NotebookNode) -> list[str]:
    """Every piece of text the notebook shows: streams, plain-text results, errors."""
    out = []
    for o in outputs(nb):
        out.append(o.get("text", ""))
        out.append(o.get("data", {}).get("text/plain", ""))
        out.append(" ".join(o.get("traceback", [])))
    return [ANSI.sub("", t) for t in out if t]


@pytest.fixture(scope="module")
def executed(tmp_path_factory, ray_local) -> nbformat.NotebookNode:
    """The notebook on a small cube made by the farm, named relative to the repository root
    (as `results/sweep-default.zarr` is): from notebooks/ that path only resolves if the
    notebook resolves it against the repository."""
    from conftest import farm_cfg
    from farm.plan.convert import make_plan
    from farm.run.sweep import run_sweep

    tmp = tmp_path_factory.mktemp("notebook")
    assert run_sweep(make_plan(farm_cfg(tmp, name="nb"))).ok
    return execute(os.path.relpath(tmp / "nb.zarr", REPO))


def test_notebook_is_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


def test_notebook_runs_every_cell_without_errors(executed):
    errors = [f"{o['ename']}: {o['evalue']}" for o in outputs(executed)
              if o.get("output_type") == "error"]
    assert not errors
    assert all(c.get("execution_count") for c in executed.cells if c.cell_type == "code")


def test_notebook_shows_its_figures_inline(executed):
    images = [o for o in outputs(executed) if "image/png" in o.get("data", {})]
    assert len(images) >= 3, f"{len(images)} figures shown"


def test_notebook_outputs_hold_no_traceback_or_warning(executed):
    stderr = [o["text"] for o in outputs(executed)
              if o.get("output_type") == "stream" and o.get("name") == "stderr"]
    assert not stderr
    noisy = [t for t in texts(executed) if "traceback" in t.lower() or "warn" in t.lower()]
    assert not noisy


def test_notebook_without_a_cube_says_in_one_line_how_to_make_one(tmp_path):
    nb = execute(str(tmp_path / "missing.zarr"))
    errors = [o for o in outputs(nb) if o.get("output_type") == "error"]
    assert len(errors) == 1
    shown = ANSI.sub("", "\n".join(errors[0]["traceback"])).strip()
    assert len(shown.splitlines()) == 1, shown
    assert "make demo" in shown and str(tmp_path / "missing.zarr") in shown
    code = [c for c in nb.cells if c.cell_type == "code"]
    failed = next(i for i, c in enumerate(code) if c.get("outputs") == [errors[0]])
    assert not any(c.get("execution_count") for c in code[failed + 1:])  # it stops there
