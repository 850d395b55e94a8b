"""The farm's driver never imports JAX and its workers never import Hydra or xarray.

Each import costs seconds of CPU per process on a small machine (BENCHMARKS.md,
"Farm"): the driver only expands the design and writes metadata; a worker only
unpickles a task, runs the kernel and writes Zarr chunks.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap

from conftest import farm_cfg
from farm.plan.convert import make_plan
from farm.run.sweep import _tasks
from farm.store.cube import Cube


def _modules_after(code: str) -> set[str]:
    """Top-level module names imported by ``code`` in a fresh interpreter."""
    probe = textwrap.dedent(code) + textwrap.dedent("""
        import sys
        print(" ".join(sorted({m.split(".")[0] for m in sys.modules})))
    """)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True)
    return set(out.stdout.split())


def test_driver_prepares_a_run_without_importing_jax(tmp_path):
    modules = _modules_after(f"""
        from farm.plan.compose import compose_config
        from farm.plan.convert import make_plan
        from farm.store.provenance import prng_attrs
        from farm.run.sweep import _tasks, open_or_create
        plan = make_plan(compose_config(["sweep=smoke", "store.url={tmp_path / 'c.zarr'}",
                                         "sweep.seeding=independent"]))
        cube, plan = open_or_create(plan)
        tasks = list(_tasks(plan, list(range(plan.design.n_blocks))))
        assert tasks[0].hash_words.shape == (len(tasks[0].params.leverage), 2)
        cube.finalize(prng_attrs([{{"jax_prng_impl": "threefry2x32"}}]))
    """)
    assert "farm" in modules and "zarr" in modules
    assert "jax" not in modules and "jaxlib" not in modules


def test_worker_unpickles_a_task_without_hydra_or_xarray(tmp_path):
    task = next(_tasks(make_plan(farm_cfg(tmp_path, name="w")), [0]))
    blob = tmp_path / "task.pkl"
    blob.write_bytes(pickle.dumps((task, Cube(str(tmp_path / "w.zarr")))))
    modules = _modules_after(f"""
        import pickle
        task, cube = pickle.loads(open({str(blob)!r}, "rb").read())
        assert task.block.index == 0 and cube.url.endswith("w.zarr")
    """)
    assert "farm" in modules and "zarr" in modules
    assert not modules & {"hydra", "omegaconf", "xarray", "pandas", "jax"}
