"""Shared fixtures: keys, small kernel blocks compiled once per session, configs."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile

import jax
import numpy as np
import pytest

os.environ.setdefault("RAY_DEDUP_LOGS", "0")
# The suite's Ray instances live in their own temp dir (Ray's sessions, sockets and its
# record of the last `ray start --head`), shared by its `farm` subprocesses: a Ray that
# someone else runs on this machine is neither joined nor disturbed. Each local start is
# a new node (address="local", farm.run.raynet) on ports Ray picks free.
_RAY_TMP = None
if "RAY_TMPDIR" not in os.environ:
    _RAY_TMP = os.environ["RAY_TMPDIR"] = tempfile.mkdtemp(prefix="frt", dir="/tmp")
# The suite's own persistent compilation cache (kernels.compilecache): shared by the test
# process, its `farm` subprocesses and their Ray workers, never the user's ~/.cache.
_JAX_CACHE = None
if "FARM_JAX_CACHE" not in os.environ:
    _JAX_CACHE = os.environ["FARM_JAX_CACHE"] = tempfile.mkdtemp(prefix="farm-test-jax-")

jax.config.update("jax_enable_x64", True)  # float64 available for reference comparisons

from kernels import make_params, simulate_block, stack_params  # noqa: E402
from kernels.params import ModelParams, oct2025  # noqa: E402

BLOCK_CELLS = 8  # every property test runs blocks of this many cells: one compile per session
PROPERTY_PATHS = 512
PROPERTY_STEPS = 96


@pytest.fixture
def getkey():
    """A fresh, deterministic PRNG key on each call (equinox-style)."""
    counter = itertools.count()
    return lambda: jax.random.key(next(counter))


def run_cells(cells: list[ModelParams], *, seed: int = 0, return_paths: bool = False):
    """Run up to BLOCK_CELLS cells in one padded block (always the same static shape)."""
    assert 1 <= len(cells) <= BLOCK_CELLS
    padded = list(cells) + [cells[-1]] * (BLOCK_CELLS - len(cells))
    res = simulate_block(stack_params(padded), key=jax.random.key(seed),
                         n_paths=PROPERTY_PATHS, n_steps=PROPERTY_STEPS,
                         return_paths=return_paths)
    n = len(cells)
    return res._replace(
        stats={k: v[:n] for k, v in res.stats.items()},
        probs={k: v[:n] for k, v in res.probs.items()},
        paths=None if res.paths is None else {k: v[:n] for k, v in res.paths.items()},
    )


def cells_from(base: ModelParams, **axes) -> list[ModelParams]:
    """Cells varying the given parameters jointly (each keyword gives a list of values)."""
    n = len(next(iter(axes.values())))
    out = []
    for i in range(n):
        d = base._asdict()
        d.update({k: v[i] for k, v in axes.items()})
        out.append(make_params(d))
    return out


@pytest.fixture(scope="session")
def stressed() -> ModelParams:
    """A stressed Oct-2025 cell: high correlation, integrated banks."""
    d = oct2025()._asdict()
    d.update(correlation=0.8, integration=1.0)
    return make_params(d)


@pytest.fixture(scope="session")
def rng() -> np.random.Generator:
    return np.random.default_rng(20251010)


# --------------------------------------------------------------------------- farm
FARM_SMALL = ["sweep=smoke", "sweep.paths=32", "sweep.steps=24", "runtime.block_cells=4"]
"""A small farm sweep: 24 cells (3x2x2x2) in 6 blocks of 4 cells, 32 paths x 24 steps."""


@pytest.fixture(scope="session")
def ray_local():
    """A real local Ray (2 CPUs) shared by the farm tests, started as `farm run` starts it
    (farm.run.dispatch.start_ray: a new node in the suite's RAY_TMPDIR, every process on
    127.0.0.1, the farm's runtime env), never a Ray already running on the machine."""
    import ray

    from farm.run.dispatch import start_ray

    start_ray(None, 2)
    yield ray
    ray.shutdown()


def farm_cfg(tmp_path, *extra: str, name: str = "cube"):
    """Compose the small sweep writing to ``tmp_path/name.zarr``."""
    from farm.plan.compose import compose_config

    return compose_config([*FARM_SMALL, f"store.url={tmp_path / name}.zarr", *extra])


def cube_arrays(url) -> dict[str, np.ndarray]:
    """Every data variable of a cube as NumPy arrays (for bit-for-bit comparisons)."""
    import xarray as xr

    ds = xr.open_zarr(str(url))
    return {k: ds[k].values for k in ds.data_vars}


def assert_identical(a: dict, b: dict) -> None:
    """Two cubes' arrays (:func:`cube_arrays`) are bit-for-bit equal, variable by variable."""
    assert set(a) == set(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def pytest_sessionfinish(session, exitstatus):
    if _JAX_CACHE:
        shutil.rmtree(_JAX_CACHE, ignore_errors=True)
    if _RAY_TMP:
        shutil.rmtree(_RAY_TMP, ignore_errors=True)


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """``farm ARGV`` in-process: (exit status, stdout, stderr), argparse's usage errors
    (SystemExit) included."""
    from farm.cli import main

    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err
