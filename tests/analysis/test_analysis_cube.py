"""analysis.cube: opening farm cubes, provenance attrs, incomplete cubes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

import analysis
from analysis.testing import write_synthetic_cube

GRID = {"leverage": np.linspace(0.0, 3.0, 7), "integration": np.array([0.0, 0.5, 1.0])}


def _p(leverage, integration, **_):
    return 1.0 / (1.0 + np.exp(-6.0 * (leverage - 1.5 + 0.5 * integration)))


def test_open_grid_cube_is_lazy_and_decodes_attrs(tmp_path):
    path = write_synthetic_cube(
        tmp_path / "g.zarr", {"p_systemic": _p, "drawdown_eq": 0.1}, grid=GRID, block_cells=6
    )
    ds = analysis.open_cube(path)
    assert isinstance(ds, xr.Dataset)
    assert not isinstance(ds["p_systemic"].variable._data, np.ndarray)  # not loaded
    assert ds["drawdown_eq"].dims == ("leverage", "integration", "stat")
    info = analysis.cube_info(ds)
    assert info.method == "grid" and info.is_grid and info.complete
    assert info.axes == ("leverage", "integration")
    assert info.n_cells == 21 and info.n_done == 21 and info.n_paths == 256
    assert info.design["chunks"] == [2, 3] and info.versions == {"python": "synthetic"}
    assert info.failed_blocks == {}
    np.testing.assert_allclose(
        analysis.cell_values(ds, "drawdown_eq", "mean").values, 0.1, rtol=1e-6
    )
    X, y, axes = analysis.cell_table(ds, "p_systemic")
    assert X.shape == (21, 2) and axes == ("leverage", "integration")
    np.testing.assert_allclose(y, _p(X[:, 0], X[:, 1]), rtol=1e-6)


def test_open_sampled_cube_without_consolidated_metadata(tmp_path):
    rng = np.random.default_rng(0)
    samples = {"leverage": rng.uniform(0, 3, 40), "integration": rng.uniform(0, 1, 40)}
    path = write_synthetic_cube(
        tmp_path / "s.zarr", {"p_systemic": _p}, samples=samples, consolidated=False
    )
    ds = analysis.open_cube(str(path))
    assert not analysis.is_grid(ds)
    assert analysis.axes_of(ds) == ("leverage", "integration")
    assert ds["leverage"].dims == ("cell",)
    assert analysis.cube_info(ds).method == "lhs"


def test_not_a_farm_cube(tmp_path):
    plain = tmp_path / "plain.zarr"
    xr.Dataset({"a": ("x", np.zeros(3))}).to_zarr(plain, consolidated=False)
    with pytest.raises(analysis.NotAFarmCubeError, match="farm_format"):
        analysis.open_cube(plain)
    (tmp_path / "dir").mkdir()
    with pytest.raises(analysis.NotAFarmCubeError):
        analysis.open_cube(tmp_path / "dir")
    with pytest.raises(FileNotFoundError):
        analysis.open_cube(tmp_path / "missing.zarr")


def test_incomplete_cube_counts_and_allow_incomplete(tmp_path):
    status = np.ones((7, 3), np.int8)
    status[0:2, :] = 0  # block 0 (rows 0-1) pending
    status[4, 1] = 2  # one failed cell in block 2 (rows 4-5)
    path = write_synthetic_cube(
        tmp_path / "inc.zarr",
        {"p_systemic": _p, "drawdown_eq": 0.2},
        grid=GRID,
        block_cells=6,
        status=status,
        failed_blocks={2: "RuntimeError: boom"},
    )
    with pytest.raises(analysis.IncompleteCubeError) as err:
        analysis.open_cube(path)
    msg = str(err.value)
    assert "7 of 21 cells (2 blocks)" in msg
    assert "6 pending, 1 failed" in msg and "[2]" in msg and "allow_incomplete=True" in msg

    ds = analysis.open_cube(path, allow_incomplete=True)
    info = analysis.cube_info(ds)
    assert (info.n_done, info.n_pending, info.n_failed) == (14, 6, 1)
    assert info.failed_blocks == {2: "RuntimeError: boom"}
    p = ds["p_systemic"].values
    assert np.isnan(p[status != 1]).all() and np.isfinite(p[status == 1]).all()
    dd = ds["drawdown_eq"].values
    assert np.isnan(dd[status != 1]).all() and (dd[status == 1] < 999).all()
    # the analysis skips the NaN cells instead of using the sentinel values
    assert float(analysis.surface(ds, "p_systemic", "leverage", "integration").max()) <= 1.0


def test_cube_written_by_the_farm(tmp_path):
    """Contract check against the real writer (farm.store.cube), when it is importable."""
    farm_cube = pytest.importorskip("farm.store.cube")
    farm_design = pytest.importorskip("farm.plan.design")
    provenance = pytest.importorskip("farm.store.provenance")
    from analysis.intervals import wilson
    from kernels.outputs import PATH_OUTPUTS, PROBABILITIES, PROBABILITY_BASES, STATS

    lev, integ = np.linspace(0.0, 3.0, 13), np.array([0.0, 0.5, 1.0])
    mesh = np.meshgrid(lev, integ, indexing="ij")
    table = np.stack([m.ravel() for m in mesh], axis=1)
    design = farm_design.Design(
        "grid",
        ("leverage", "integration"),
        ("leverage", "integration"),
        (13, 3),
        (4, 3),
        {"leverage": lev, "integration": integ},
        table,
    )
    attrs = provenance.provenance_attrs("model:\n  leverage: 1.0\n", "h", design, 7, "common", 8, 4)
    cube = farm_cube.create_cube(str(tmp_path / "farm.zarr"), design, attrs)
    blocks = list(design.blocks())
    for block in blocks[:-1]:
        x = table[block.cells]
        n = len(block.cells)
        stats = {v: np.repeat(x[:, :1] / 10, len(STATS), axis=1) for v in PATH_OUTPUTS}
        probs = {}
        for p in PROBABILITY_BASES:
            probs[p] = _p(x[:, 0], x[:, 1])
            probs[f"{p}_lo"], probs[f"{p}_hi"] = wilson(probs[p], 8)
        assert n == len(probs["p_systemic"]) and set(probs) == set(PROBABILITIES)
        cube.write_block(block, stats, probs)
    cube.mark_failed(blocks[-1], "ValueError: planted failure")
    with pytest.raises(analysis.IncompleteCubeError, match="3 of 39 cells"):
        analysis.open_cube(tmp_path / "farm.zarr")
    ds = analysis.open_cube(tmp_path / "farm.zarr", allow_incomplete=True)
    info = analysis.cube_info(ds)
    assert info.failed_blocks == {3: "ValueError: planted failure"}
    assert info.n_failed == 3 and info.root_seed == 7
    assert json.loads(ds.attrs["design"])["axes"] == ["leverage", "integration"]
    cl = analysis.critical_leverage(ds)
    np.testing.assert_allclose(cl.values, 1.5 - 0.5 * integ, atol=0.02)
    assert np.isnan(ds["p_systemic"].sel(leverage=3.0)).all()
    # the stored Wilson bounds are the band, not metrics of their own
    assert sorted(analysis.probability_names(ds)) == ["p_btc_crash", "p_fed_fired", "p_systemic"]
    lo, hi = analysis.probability_bounds(ds, "p_systemic")
    assert lo.name == "p_systemic_lo" and hi.name == "p_systemic_hi"
    early, late = analysis.critical_leverage_band(ds)
    assert (early.values < cl.values).all() and (cl.values < late.values).all()


def test_one_cube_format_for_farm_and_analysis():
    """Farm and analysis read the status codes, the chunk rule and the not-a-cube error from
    one module (kernels.cubeformat); the block status reduction treats flagged cells as
    done and a failed cell as failing its block."""
    from analysis import cube as acube
    from farm.store import layout as cubelayout
    from kernels import cubeformat as fmt

    for name in ("STATUS_PENDING", "STATUS_DONE", "STATUS_FAILED", "STATUS_FLAGGED",
                 "DONE_STATUSES"):
        assert getattr(cubelayout, name) is getattr(fmt, name), name
    assert acube.DONE_STATUSES is fmt.DONE_STATUSES
    assert acube.NotAFarmCubeError is fmt.NotACubeError
    assert set(fmt.STATUS_MEANINGS) == {0, 1, 2, 3}
    status = np.array([[1, 3, 1, 0], [2, 1, 1, 1]], np.int8)
    np.testing.assert_array_equal(fmt.block_status_of(status, (1, 2)), [1, 0, 2, 1])
    assert fmt.unfinished_blocks(status, (1, 2)) == 2
    assert fmt.grid_chunks((16, 5, 3, 6), 90) == (1, 5, 3, 6)
    assert fmt.grid_chunks((16, 8, 4, 4), 100) == (1, 4, 4, 4)  # 8 split 4 + 4, not 6 + 2


def test_flagged_cells_are_done_and_counted(tmp_path, caplog):
    status = np.ones((7, 3), np.int8)
    status[3, :] = 3  # flagged: done, max_rounds hit too often
    path = write_synthetic_cube(tmp_path / "fl.zarr", {"p_systemic": _p, "drawdown_eq": 0.2},
                                grid=GRID, block_cells=6, status=status)
    with caplog.at_level("WARNING", logger="analysis.cube"):
        ds = analysis.open_cube(path)  # complete: flagged cells are done
    assert "3 of 21 cells are flagged" in caplog.text
    info = analysis.cube_info(ds)
    assert info.complete and (info.n_done, info.n_flagged, info.n_failed) == (21, 3, 0)
    assert np.isfinite(ds["p_systemic"].values).all()  # flagged cells keep their numbers
    status[0, 0] = 0
    path = write_synthetic_cube(tmp_path / "fl2.zarr", {"p_systemic": _p}, grid=GRID,
                                block_cells=6, status=status)
    with pytest.raises(analysis.IncompleteCubeError, match=r"1 of 21 cells .* 3 cells are flagged"):
        analysis.open_cube(path)
    ds = analysis.open_cube(path, allow_incomplete=True)
    assert np.isnan(ds["p_systemic"].values[0, 0]) and np.isfinite(ds["p_systemic"].values[3]).all()


def test_probability_bounds_stored_or_computed_from_n_paths(tmp_path):
    from analysis.intervals import wilson

    stored = analysis.open_cube(write_synthetic_cube(
        tmp_path / "b.zarr", {"p_systemic": _p, "drawdown_eq": 0.1}, grid=GRID, bounds=True,
        n_paths=100))
    old = analysis.open_cube(write_synthetic_cube(
        tmp_path / "o.zarr", {"p_systemic": _p, "drawdown_eq": 0.1}, grid=GRID, n_paths=100))
    assert "p_systemic_lo" in stored and "p_systemic_lo" not in old
    assert analysis.probability_names(stored) == analysis.probability_names(old) == ["p_systemic"]
    for ds in (stored, old):
        lo, hi = analysis.probability_bounds(ds, "p_systemic")
        p = ds["p_systemic"].values
        want_lo, want_hi = wilson(p.astype(float), 100)
        np.testing.assert_allclose(lo.values, want_lo, atol=1e-6)
        np.testing.assert_allclose(hi.values, want_hi, atol=1e-6)
        assert (lo.values <= p).all() and (p <= hi.values).all() and (hi - lo).min() > 0.01
    with pytest.raises(ValueError, match="not a probability"):
        analysis.probability_bounds(old, "drawdown_eq")
