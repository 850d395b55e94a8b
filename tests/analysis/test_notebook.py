"""notebooks/explore.ipynb executes without errors (nbclient, real kernel)."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "explore.ipynb"


def test_notebook_is_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


def test_notebook_executes(tmp_path, monkeypatch, ray_local):
    """Runs on a small cube made by the farm (the notebook's own sweep is skipped)."""
    from conftest import farm_cfg
    from farm.plan.convert import make_plan
    from farm.run.sweep import run_sweep

    cfg = farm_cfg(tmp_path, name="nb")
    assert run_sweep(make_plan(cfg)).ok
    monkeypatch.setenv("FARM_NOTEBOOK_CUBE", str(tmp_path / "nb.zarr"))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute(env=dict(os.environ))
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
