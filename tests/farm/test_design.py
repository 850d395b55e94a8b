"""farm.plan.design and kernels.keys: cells, chunks, blocks, sampled designs, keys."""

from __future__ import annotations

import functools
import json
import logging
import math

import jax
import numpy as np
import pytest
from omegaconf import OmegaConf

from farm.errors import ConfigError
from farm.plan.compose import compose_config
from farm.plan.convert import make_plan, sweep_spec
from farm.plan.design import cell_params, grid_chunks, make_design
from farm.plan.identity import model_values
from farm.plan.limits import estimate_cube_bytes
from kernels.keys import key_from_words, root_key, seeding_words
from kernels.params import (
    VECTOR_FIELDS,
    ModelParams,
    baseline,
    make_params,
    repeat_params,
    stack_params,
)


@functools.lru_cache(maxsize=16)
def _composed(*overrides: str):
    return compose_config(list(overrides))


def design_cfg(*overrides: str, **changes):
    """A composed config (cached per overrides) with dotted keys (``__`` for ``.``) set."""
    cfg = _composed(*overrides).copy()
    for dotted, value in changes.items():
        OmegaConf.update(cfg, dotted.replace("__", "."), value, merge=False, force_add=True)
    return cfg


def _covered_once(design) -> None:
    seen = np.zeros(design.n_cells, dtype=int)
    for i, block in enumerate(design.blocks()):
        assert block.index == i
        assert block.cells.size == math.prod(block.shape)
        for dim, chunk in zip(design.cell_dims, design.chunks, strict=True):
            assert block.region[dim].start % chunk == 0  # chunk-aligned
        # cells are the region's flat indices in C order
        ranges = [np.arange(s.start, s.stop) for s in block.region.values()]
        want = np.ravel_multi_index(tuple(np.meshgrid(*ranges, indexing="ij")), design.shape)
        np.testing.assert_array_equal(block.cells, want.ravel())
        seen[block.cells] += 1
    assert (seen == 1).all()
    assert i + 1 == design.n_blocks


# ---------------------------------------------------------------- grid


def test_default_grid_shape_order_and_chunks():
    cfg = design_cfg()
    d = make_design(sweep_spec(cfg))
    assert d.method == "grid" and d.axes == d.cell_dims
    assert d.axes == ("leverage", "correlation", "fed_put", "integration")
    assert d.shape == (16, 5, 3, 6) and d.n_cells == 1440
    assert d.chunks == (1, 5, 3, 6) and d.n_blocks == 16  # 90 cells per block, no padding
    # C order: the last axis varies fastest
    idx = np.unravel_index(np.arange(d.n_cells), d.shape)
    for j, axis in enumerate(d.axes):
        np.testing.assert_array_equal(d.table[:, j], d.coords[axis][idx[j]])
    np.testing.assert_array_equal(d.coords["leverage"], np.asarray(cfg.sweep.axes.leverage))


@pytest.mark.parametrize("block_cells,chunks", [
    (1, (1, 1, 1, 1)), (3, (1, 1, 1, 2)), (16, (1, 1, 4, 4)), (20, (1, 1, 4, 4)),
    (48, (1, 3, 4, 4)), (64, (1, 4, 4, 4)), (128, (1, 8, 4, 4)), (300, (2, 8, 4, 4)),
    (4096, (16, 8, 4, 4)),
])
def test_grid_chunking_rule(block_cells, chunks):
    assert grid_chunks((16, 8, 4, 4), block_cells) == chunks


@pytest.mark.parametrize("block_cells", [1, 7, 48, 64, 100, 5000])
def test_blocks_cover_every_cell_once(block_cells):
    d = make_design(sweep_spec(design_cfg("sweep=smoke", runtime__block_cells=block_cells)))
    _covered_once(d)
    assert all(b.cells.size <= block_cells for b in d.blocks())


def test_sampled_blocks_cover_every_cell_once():
    cfg = design_cfg("sweep=lhs", sweep__n_samples=100, runtime__block_cells=32)
    d = make_design(sweep_spec(cfg))
    assert d.chunks == (25,) and d.n_blocks == 4  # 100 cells in 4 equal blocks, not 32+32+32+4
    _covered_once(d)
    assert d.block(3).region == {"cell": slice(75, 100)}


def test_block_index_out_of_range():
    d = make_design(sweep_spec(design_cfg("sweep=smoke")))
    with pytest.raises(IndexError):
        d.block(d.n_blocks)


def test_a_fifth_axis_is_a_dimension():
    cfg = design_cfg("sweep=smoke", sweep__axes__depth_floor=[0.05, 0.1, 0.2],
                     runtime__block_cells=8)
    make_plan(cfg)
    d = make_design(sweep_spec(cfg))
    assert d.axes[-1] == "depth_floor" and d.shape == (3, 2, 2, 2, 3)
    assert d.chunks == (1, 1, 1, 2, 3)
    _covered_once(d)
    p = cell_params(cfg.model, d, d.block(1).cells)
    np.testing.assert_array_equal(p.depth_floor, [0.05, 0.1, 0.2] * 2)


def test_single_is_one_cell_with_model_values():
    cfg = design_cfg("sweep=single", "model=oct2025")
    d = make_design(sweep_spec(cfg))
    assert (d.axes, d.cell_dims, d.shape, d.n_blocks) == ((), ("cell",), (1,), 1)
    p = cell_params(cfg.model, d, np.array([0]))
    assert p.correlation.shape == (1,) and p.correlation[0] == 0.8


def test_cell_params_replaces_only_the_axes():
    cfg = design_cfg("sweep=smoke")
    d = make_design(sweep_spec(cfg))
    cells = np.array([0, 5, 23])
    p = cell_params(cfg.model, d, cells, validate=True)
    assert isinstance(p, ModelParams)
    base = baseline()
    for name in ModelParams._fields:
        leaf = np.asarray(getattr(p, name))
        assert leaf.shape[0] == 3 and leaf.dtype == np.float64
        if name in d.axes:
            np.testing.assert_array_equal(leaf, d.table[cells, d.axes.index(name)])
        elif name in VECTOR_FIELDS:
            np.testing.assert_array_equal(leaf, np.tile(getattr(base, name), (3, 1)))
        else:
            np.testing.assert_array_equal(leaf, np.full(3, getattr(base, name)))
    # the driver passes the model once made (a ModelParams): the same block
    again = cell_params(make_params(model_values(cfg.model)), d, cells)
    for name in ModelParams._fields:
        np.testing.assert_array_equal(getattr(again, name), getattr(p, name), err_msg=name)


def test_to_attrs_is_json():
    for cfg in [design_cfg(), design_cfg("sweep=sobol", sweep__n_samples=64)]:
        attrs = make_design(sweep_spec(cfg)).to_attrs()
        assert json.loads(json.dumps(attrs)) == attrs
    assert attrs["cell_dims"] == ["cell"] and attrs["n_cells"] == 64


def test_estimate_cube_bytes():
    d = make_design(sweep_spec(design_cfg("sweep=smoke")))
    small = estimate_cube_bytes(d, 64)
    assert 0 < small < estimate_cube_bytes(d, 64, store_paths=True)
    assert small % d.n_cells == 0


def test_forced_chunks():
    d = make_design(sweep_spec(design_cfg("sweep=smoke")), chunks=(1, 2, 1, 2))
    assert d.chunks == (1, 2, 1, 2) and d.n_blocks == 3 * 2
    _covered_once(d)


# ---------------------------------------------------------------- sampled


@pytest.mark.parametrize("method", ["lhs", "sobol"])
def test_sampled_within_bounds_and_reproducible(method):
    ch = {"sweep__n_samples": 128, "sweep__axes__leverage": [0.5, 2.5]}
    a = make_design(sweep_spec(design_cfg(f"sweep={method}", **ch)))
    b = make_design(sweep_spec(design_cfg(f"sweep={method}", **ch)))
    c = make_design(sweep_spec(design_cfg(f"sweep={method}", seed=1, **ch)))
    assert a.cell_dims == ("cell",) and a.shape == (128,)
    np.testing.assert_array_equal(a.table, b.table)
    assert not np.array_equal(a.table, c.table)
    lo = np.array([0.5, -1.0, 0.0, 0.0])
    hi = np.array([2.5, 1.0, 1.0, 1.0])
    assert ((a.table >= lo) & (a.table <= hi)).all()
    np.testing.assert_array_equal(a.coords["cell"], np.arange(128))
    np.testing.assert_array_equal(a.coords["leverage"], a.table[:, 0])


def test_lhs_is_stratified():
    d = make_design(sweep_spec(design_cfg("sweep=lhs", sweep__n_samples=50)))
    lo = np.array([0.0, -1.0, 0.0, 0.0])
    hi = np.array([3.0, 1.0, 1.0, 1.0])
    strata = np.floor((d.table - lo) / (hi - lo) * 50).astype(int)
    for j in range(4):
        assert sorted(strata[:, j]) == list(range(50))


def test_sobol_rounds_up_to_a_power_of_two(caplog):
    with caplog.at_level(logging.INFO, logger="farm.plan.design"):
        d = make_design(sweep_spec(design_cfg("sweep=sobol", sweep__n_samples=100)))
    assert d.n_cells == 128
    assert "128" in caplog.text


# ---------------------------------------------------------------- csv


def test_csv_design(tmp_path):
    path = tmp_path / "cells.csv"
    path.write_text("leverage, depth_floor\n0.5,0.1\n1.5,0.2\n\n2.5,0.3\n")
    cfg = design_cfg("sweep=csv", sweep__csv=str(path), runtime__block_cells=2)
    make_plan(cfg)
    d = make_design(sweep_spec(cfg))
    assert d.method == "csv" and d.axes == ("leverage", "depth_floor")
    assert d.shape == (3,) and d.chunks == (2,) and d.n_blocks == 2
    np.testing.assert_array_equal(d.table, [[0.5, 0.1], [1.5, 0.2], [2.5, 0.3]])
    p = cell_params(cfg.model, d, d.block(1).cells)
    assert p.leverage.tolist() == [2.5] and p.depth_floor.tolist() == [0.3]


@pytest.mark.parametrize("text,needle", [
    ("levrage\n1\n", "not a model parameter"),
    ("leverage,fed_put\n1\n", "row 2"),
    ("leverage\nabc\n", "abc"),
    ("leverage\n-1\n", "leverage=-1"),
    ("leverage,leverage\n1,2\n", "twice"),
    ("leverage\n", "at least one row"),
])
def test_csv_errors_name_the_file(tmp_path, text, needle):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        make_plan(design_cfg("sweep=csv", sweep__csv=str(path)))
    assert info.value.key == "sweep.csv" and needle in str(info.value)


# ---------------------------------------------------------------- seeding


def _key_data(keys) -> np.ndarray:
    return np.asarray(jax.random.key_data(keys))


def block_key(seed, seeding, design, block):
    """The key a worker makes for ``block`` (a Block or flat cell indices)."""
    cells = block.cells if hasattr(block, "cells") else np.asarray(block)
    return key_from_words(seed, seeding_words(seeding, design.table[cells]))


def test_common_seeding_is_one_root_key_for_every_block():
    d = make_design(sweep_spec(design_cfg("sweep=smoke", runtime__block_cells=4)))
    root = _key_data(root_key(0))
    for b in d.blocks():
        np.testing.assert_array_equal(_key_data(block_key(0, "common", d, b)), root)
    np.testing.assert_array_equal(_key_data(jax.random.key(3)),
                                  _key_data(block_key(3, "common", d, d.block(0))))


def test_independent_keys_do_not_depend_on_blocks():
    per_cell = {}
    for bc in (1, 5, 24):
        d = make_design(sweep_spec(design_cfg("sweep=smoke", runtime__block_cells=bc)))
        keys = np.empty((d.n_cells, 2), dtype=np.uint32)
        for b in d.blocks():
            k = block_key(0, "independent", d, b)
            assert k.shape == (b.cells.size,)
            keys[b.cells] = _key_data(k)
        per_cell[bc] = keys
    np.testing.assert_array_equal(per_cell[1], per_cell[5])
    np.testing.assert_array_equal(per_cell[1], per_cell[24])
    assert len({tuple(k) for k in per_cell[1]}) == per_cell[1].shape[0]  # distinct cells


def test_independent_keys_follow_values_and_seed():
    small = make_design(sweep_spec(design_cfg("sweep=smoke", sweep__axes__leverage=[1.0])))
    full = make_design(sweep_spec(design_cfg("sweep=smoke")))
    # cell (leverage=1, ...) sits at different flat indices in the two designs
    a = _key_data(block_key(0, "independent", small, np.arange(small.n_cells)))
    b = _key_data(block_key(0, "independent", full, np.arange(8, 16)))
    np.testing.assert_array_equal(a, b)
    c = _key_data(block_key(1, "independent", small, np.arange(small.n_cells)))
    assert not np.array_equal(a, c)


def test_repeat_params_is_stack_params_of_copies():
    p = baseline()
    a, b = repeat_params(p, 5), stack_params([p] * 5)
    for name in ModelParams._fields:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        assert np.asarray(getattr(a, name)).dtype == np.float64
    with pytest.raises(ValueError, match="at least one cell"):
        repeat_params(p, 0)


def test_a_single_cell_design_has_a_table_hash():
    """sweep=single: no axes, a (1, 0) table; its hash is that of no bytes, as before."""
    import hashlib

    from farm.plan.design import SweepSpec, make_design

    d = make_design(SweepSpec(method="grid", axes={}, n_samples=0, csv=None, block_cells=4,
                              seed=0))
    assert d.table.shape == (1, 0)
    assert d.table_sha256() == hashlib.sha256(b"").hexdigest()
    assert d.to_attrs()["table_sha256"] == hashlib.sha256(b"").hexdigest()


@pytest.mark.parametrize("shape,block_cells", [
    ((16, 5, 3, 6), 128), ((10, 129), 128), ((100, 100, 100), 128), ((7, 1000), 300),
    ((3, 2, 2, 2), 4), ((1000,), 128), ((1290,), 128), ((16, 11, 2), 128),
])
def test_padding_of_the_last_blocks_stays_under_5_percent(shape, block_cells):
    """Every block is padded to the full block shape (one compiled kernel shape), so a
    sliver of a last block would be computed as a whole block; the chunk rule splits the
    partial axis evenly instead (a 10 x 129 grid at 128 cells: 1.98x the cells before)."""
    import math

    from kernels.cubeformat import grid_chunks

    chunks = grid_chunks(shape, block_cells)
    n_blocks = math.prod(-(-n // c) for n, c in zip(shape, chunks, strict=True))
    computed = n_blocks * math.prod(chunks)
    assert computed / math.prod(shape) - 1 <= 0.05, (chunks, computed)
    assert math.prod(chunks) <= block_cells


def test_automatic_block_size_grows_for_large_sweeps():
    """runtime.block_cells=0: 128 cells per block, 4,096 from 131,072 cells on (each
    statistic's chunk >= 100 KB: 4,096 cells x 8 float32 statistics = 128 KB); an
    explicit size always wins."""
    from farm.plan.design import block_size

    assert block_size(0, 2048) == block_size(0, 131_071) == 128
    assert block_size(0, 131_072) == block_size(0, 10_000_000) == 4096
    assert block_size(7, 10_000_000) == 7
    # a small sweep is split so that every worker gets at least two blocks
    assert block_size(0, 4, workers=2) == 1 and block_size(0, 24, workers=2) == 6
    assert block_size(0, 2048, workers=2) == 128 and block_size(0, 24, workers=64) == 1
    assert 4096 * 8 * 4 >= 100_000
    axes = {"leverage": [1.0 + i / 512 for i in range(512)],
            "integration": [i / 255 for i in range(256)]}
    big = make_design(sweep_spec(design_cfg("sweep=smoke", runtime__block_cells=0,
                                            sweep__axes=axes)))
    assert big.n_cells == 131_072 and math.prod(big.chunks) == 4096
    small = make_design(sweep_spec(design_cfg("sweep=smoke", runtime__block_cells=0)))
    assert math.prod(small.chunks) <= 128


def test_a_grid_table_is_computed_per_row_and_hashes_like_the_full_table():
    """A grid's table is never held whole (a million cells would be 32 MB in the driver):
    any rows, the whole array and the digest equal those of the materialised table."""
    import hashlib

    from farm.plan.gridtable import GridTable

    axes = {"leverage": [1.0, 1.5, 2.0], "correlation": [0.1, 0.5], "integration": [0, .5, 1]}
    d = make_design(sweep_spec(design_cfg("sweep=smoke", sweep__axes=axes)))
    assert isinstance(d.table, GridTable)
    full = np.stack(np.meshgrid(*[np.asarray(v, float) for v in axes.values()],
                                indexing="ij"), axis=-1).reshape(-1, 3)
    np.testing.assert_array_equal(np.asarray(d.table), full)
    cells = np.array([17, 0, 5, 5])
    np.testing.assert_array_equal(d.table[cells], full[cells])
    np.testing.assert_array_equal(d.table[cells, 1], full[cells, 1])
    np.testing.assert_array_equal(d.table[:, 2], full[:, 2])
    np.testing.assert_array_equal(d.table[4], full[4])
    assert d.table_sha256() == hashlib.sha256(full.astype("<f8").tobytes()).hexdigest()
    with pytest.raises(IndexError):
        d.table[np.array([18])]
