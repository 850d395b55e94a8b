"""The result cube (farm.store.cube), its provenance and `farm status` on real Zarr stores."""

from __future__ import annotations

import json
import logging
import pickle
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr
from _cube_helpers import cube_attrs, fake_result, grid_design, moto_s3, sampled_design

from farm.errors import StoreRefusedError
from farm.store.cube import (
    Cube,
    IncompatibleStoreError,
    NotACubeError,
    StoreExistsError,
    create_cube,
    cube_exists,
    describe_difference,
    open_existing,
    path_var_name,
)
from farm.store.provenance import jax_prng_info, prng_attrs, provenance_attrs, redact_secrets
from farm.store.status import store_summary
from kernels.cfunits import udunits
from kernels.outputs import PATH_OUTPUTS, PROBABILITIES, STATS

CONTRACT_ATTRS = {
    "farm_format", "config", "config_hash", "design", "root_seed", "seeding", "n_paths",
    "n_steps", "versions", "jax_prng_impl", "git_commit", "created", "failed_blocks",
}


def _fill(cube: Cube, design, n_paths: int = 0) -> None:
    for block in design.blocks():
        cube.write_block(block, *fake_result(block, n_paths))


def _expected(design, var: str, n_paths: int = 0, kind: str = "stats") -> np.ndarray:
    """The full array the fake results should produce, assembled cell by cell."""
    width = {"stats": (len(STATS),), "probs": (), "paths": (n_paths,)}[kind]
    out = np.full((design.n_cells, *width), np.nan, dtype=np.float32)
    for block in design.blocks():
        stats, probs, paths = fake_result(block, n_paths)
        out[block.cells] = {"stats": stats, "probs": probs, "paths": paths}[kind][var]
    return out.reshape(*design.shape, *width)


@pytest.fixture
def grid_cube(tmp_path: Path) -> tuple[Cube, object]:
    design = grid_design()
    return create_cube(tmp_path / "grid.zarr", design, cube_attrs(design)), design


def test_template_layout_grid(grid_cube):
    cube, design = grid_cube
    ds = xr.open_zarr(cube.url)
    assert set(ds.data_vars) == {*PATH_OUTPUTS, *PROBABILITIES, "status"}
    assert dict(ds.sizes) == {"leverage": 5, "depth": 3, "stat": len(STATS)}
    np.testing.assert_array_equal(ds.leverage, design.coords["leverage"])
    np.testing.assert_array_equal(ds.depth, design.coords["depth"])
    assert list(ds.stat.values) == list(STATS)
    for var, spec in PATH_OUTPUTS.items():
        assert ds[var].dims == ("leverage", "depth", "stat")
        assert ds[var].dtype == np.float32
        assert ds[var].encoding["chunks"] == (2, 3, len(STATS))
        assert ds[var].attrs["units"] == udunits(spec.units)
        assert ds[var].attrs["long_name"].startswith(spec.description)
        assert np.isnan(ds[var].values).all()
    for name in PROBABILITIES:
        assert ds[name].dims == ("leverage", "depth") and ds[name].dtype == np.float32
        assert ds[name].encoding["chunks"] == (2, 3)
    assert ds.status.dtype == np.int8 and (ds.status.values == 0).all()
    assert ds.status.encoding["chunks"] == (2, 3)
    assert CONTRACT_ATTRS <= set(ds.attrs)
    assert json.loads(ds.attrs["design"])["method"] == "grid"
    assert json.loads(ds.attrs["failed_blocks"]) == {}
    assert (cube.shape, cube.chunks, cube.cell_dims) == ((5, 3), (2, 3), ("leverage", "depth"))
    assert cube.n_blocks == design.n_blocks == 3
    assert not list(Path(cube.url, "drawdown_btc").glob("c/**/*.*"))  # no chunk written yet


def test_template_layout_sampled(tmp_path):
    design = sampled_design(n=10, chunk=4)
    cube = create_cube(tmp_path / "s.zarr", design, cube_attrs(design))
    ds = xr.open_zarr(cube.url)
    assert ds.drawdown_btc.dims == ("cell", "stat") and ds.p_systemic.dims == ("cell",)
    assert set(ds.coords) == {"cell", "leverage", "depth", "stat"}
    assert ds.leverage.dims == ("cell",)
    np.testing.assert_array_equal(ds.depth, design.coords["depth"])
    assert ds.drawdown_btc.encoding["chunks"] == (4, len(STATS))


def test_write_blocks_read_back_exactly(grid_cube):
    cube, design = grid_cube
    _fill(cube, design)
    ds = cube.dataset()
    for var in PATH_OUTPUTS:
        np.testing.assert_array_equal(ds[var].values, _expected(design, var))
    for name in PROBABILITIES:
        np.testing.assert_array_equal(ds[name].values, _expected(design, name, kind="probs"))
    assert (ds.status.values == 1).all()
    assert (cube.block_status(design) == 1).all()


def test_per_path_outputs(tmp_path):
    design = sampled_design(n=10, chunk=4)
    cube = create_cube(tmp_path / "p.zarr", design, cube_attrs(design, n_paths=16),
                       store_paths=True)
    assert cube.has_paths
    block = design.block(0)
    stats, probs, _ = fake_result(block)
    with pytest.raises(ValueError, match="pass paths"):
        cube.write_block(block, stats, probs)
    _fill(cube, design, n_paths=16)
    ds = cube.dataset()
    var = path_var_name("drawdown_btc")
    assert ds[var].dims == ("cell", "path") and ds.sizes["path"] == 16
    np.testing.assert_array_equal(ds[var].values, _expected(design, "drawdown_btc", 16, "paths"))


def test_bad_inputs_are_refused(grid_cube):
    cube, design = grid_cube
    block = design.block(0)
    stats, probs, _ = fake_result(block)
    with pytest.raises(ValueError, match="missing"):
        cube.write_block(block, {k: v for k, v in stats.items() if k != "bank_loss"}, probs)
    bad = dict(stats, drawdown_btc=stats["drawdown_btc"][:-1])
    with pytest.raises(ValueError, match="drawdown_btc"):
        cube.write_block(block, bad, probs)
    shifted = type(block)(index=0, region={"leverage": slice(1, 3), "depth": slice(0, 3)},
                          cells=block.cells)
    with pytest.raises(ValueError, match="not one chunk"):
        cube.write_block(shifted, stats, probs)
    with pytest.raises(ValueError, match="does not store per-path"):
        cube.write_block(block, stats, probs, paths={"x": np.zeros((6, 2))})
    assert (cube.cell_status() == 0).all()


def test_status_only_after_data(grid_cube):
    cube, design = grid_cube
    block = design.block(1)
    cube.write_block_data(block, *fake_result(block)[:2])  # a crash before mark_done
    assert (cube.block_status(design) == [0, 0, 0]).all()
    assert (cube.cell_status() == 0).all()
    reopened = open_existing(cube.url)
    np.testing.assert_array_equal(  # the data is there, but the block still counts as pending
        reopened.dataset().p_systemic.values[2:4], _expected(design, "p_systemic",
                                                             kind="probs")[2:4])
    cube.mark_done(block)
    assert list(cube.block_status(design)) == [0, 1, 0]


def test_block_done_only_when_all_cells_done(grid_cube):
    cube, _ = grid_cube
    cube._array("status")[0, 0] = 1  # one cell of block 0 only
    assert list(cube.block_status()) == [0, 0, 0]


def test_failed_block_recorded_and_pruned(grid_cube, caplog):
    cube, design = grid_cube
    _fill(cube, design)
    with caplog.at_level(logging.ERROR, logger="farm.store.cube"):
        cube.mark_failed(design.block(2), "RuntimeError: boom")
    assert "boom" in caplog.text
    assert list(cube.block_status(design)) == [1, 1, 2]
    assert (cube.cell_status()[4] == 2).all()
    assert cube.failed_blocks() == {2: "RuntimeError: boom"}
    status = cube.finalize()
    assert list(status) == [1, 1, 2]
    attrs = xr.open_zarr(cube.url).attrs
    assert attrs["complete"] is False and attrs["blocks_failed"] == 1
    assert "failed block 2: RuntimeError: boom" in store_summary(cube.url)
    # the next run redoes the block; finalize drops the stale message
    cube.begin_run()
    assert "finished" not in cube.attrs
    block = design.block(2)
    cube.write_block(block, *fake_result(block)[:2])
    cube.finalize()
    assert cube.failed_blocks() == {} and cube.attrs["complete"] is True


def test_finalize_consolidates_and_xarray_reads(grid_cube):
    cube, design = grid_cube
    _fill(cube, design)
    cube.finalize()
    root = json.loads(Path(cube.url, "zarr.json").read_text())
    assert root["consolidated_metadata"]["metadata"]
    ds = xr.open_zarr(cube.url, consolidated=True)
    assert ds.attrs["finished"] and ds.attrs["complete"] is True
    np.testing.assert_array_equal(ds.bank_loss.values, _expected(design, "bank_loss"))
    assert zarr.open_consolidated(cube.url, zarr_format=3).attrs["blocks_done"] == 3


def test_compatible_and_describe_difference(grid_cube):
    cube, _ = grid_cube
    assert cube.compatible("hash-a") == (True, "")
    new_yaml = "model:\n  leverage: 20.0\nsweep:\n  paths: 512\n  extra: [1, 2]\n"
    ok, msg = cube.compatible("hash-b", new_yaml)
    assert not ok
    assert "model.leverage: 10.0 -> 20.0" in msg and "sweep.paths: 16 -> 512" in msg
    assert "sweep.extra: (absent) -> [1, 2]" in msg
    ok, msg = cube.compatible("hash-b")
    assert not ok and "config_hash" in msg
    with pytest.raises(IncompatibleStoreError, match=r"sweep\.paths"):
        cube.check_compatible("hash-b", new_yaml)
    assert describe_difference("a: 1\n", "a: 1\n") == ""
    assert describe_difference("a: {b: 1, c: x}\n", "a: {b: 2, c: x}\n") == "a.b: 1 -> 2"
    assert describe_difference("r: [a, b]", "r: [a, c]", ignore=["r"]) == ""
    # NaN ("derive it") equals NaN; 1 vs 1.0 still differs
    assert describe_difference("m: {c: .nan, v: [.nan, 1]}", "m: {c: .nan, v: [.nan, 1]}") == ""
    assert describe_difference("m: {c: 1}", "m: {c: 1.0}") == "m.c: 1 -> 1.0"
    # runtime/store/name never change the numbers: not named as the difference
    same_numbers = cube.attrs["config"] + "runtime:\n  block_cells: 8\nname: other\n"
    ok, msg = cube.compatible("hash-b", same_numbers)
    assert not ok and "runtime" not in msg and "name" not in msg and "config_hash" in msg


def test_create_refuses_existing_and_overwrites(grid_cube, tmp_path):
    cube, design = grid_cube
    _fill(cube, design)
    with pytest.raises(StoreExistsError, match="already exists"):
        create_cube(cube.url, design, cube_attrs(design))
    assert issubclass(StoreExistsError, StoreRefusedError)
    new = create_cube(cube.url, design, cube_attrs(design, config_hash="hash-b"),
                      overwrite=True)
    assert new.attrs["config_hash"] == "hash-b"
    assert (new.cell_status() == 0).all()
    assert np.isnan(new.dataset().drawdown_btc.values).all()
    other = tmp_path / "notacube"
    other.mkdir()
    (other / "precious.txt").write_text("keep me")
    with pytest.raises(NotACubeError, match="not a farm cube"):
        create_cube(other, design, cube_attrs(design), overwrite=True)
    assert (other / "precious.txt").read_text() == "keep me"


def test_open_existing_and_status_reject_non_cubes(tmp_path):
    with pytest.raises(NotACubeError, match="nothing there"):
        open_existing(tmp_path / "missing.zarr")
    zarr.open_group(tmp_path / "plain.zarr", mode="w", zarr_format=3).attrs["x"] = 1
    with pytest.raises(NotACubeError, match="farm_format"):
        store_summary(str(tmp_path / "plain.zarr"))
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ValueError):
        store_summary(str(tmp_path / "file.txt"))
    assert not cube_exists(tmp_path / "plain.zarr")


def test_store_summary(grid_cube):
    cube, design = grid_cube
    block = design.block(0)
    cube.write_block(block, *fake_result(block)[:2])
    text = store_summary(cube.url)
    assert "method:    grid" in text and "leverage, depth" in text
    assert "1 done, 0 failed, 2 pending (of 3)" in text and "cells done 6/15" in text
    assert "paths:     16" in text and "seed: 42 (common)" in text
    assert "created:" in text and "not yet" in text and "lock:      none" in text


def test_no_secrets_in_attrs(tmp_path, monkeypatch):
    secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("FARM_API_TOKEN", "tok-1234567890")
    design = grid_design()
    yaml_text = f"store:\n  url: s3://b/c.zarr\n  secret: {secret}\n  token: tok-1234567890\n"
    attrs = cube_attrs(design, config_yaml=yaml_text)
    cube = create_cube(tmp_path / "c.zarr", design, attrs,
                       storage_options={"auto_mkdir": True, "password": "hunter2-local"})
    cube.mark_failed(design.block(0), f"auth failed with {secret}")
    cube.finalize()
    text = "".join(p.read_text() for p in Path(cube.url).rglob("zarr.json"))
    for value in (secret, "tok-1234567890", "hunter2-local"):
        assert value not in text
    assert "***" in cube.attrs["config"]
    assert redact_secrets({"k": [f"x{secret}y"]}) == {"k": ["x***y"]}


def test_one_definition_of_secrets(monkeypatch):
    """farm.secrets is the only secret-name rule: the cube's attrs, its failure messages
    and `farm submit` (tests/farm/test_cluster_config.py) all use it."""
    import farm.secrets
    from farm.store import provenance

    assert provenance.redact_secrets is farm.secrets.redact_secrets
    for name in ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN",
                 "GOOGLE_APPLICATION_CREDENTIALS", "DB_PASSWORD", "PGPASSWD", "FARM_API_KEY",
                 "RAY_AUTH_TOKEN", "SSH_PRIVATE_KEY", "key", "secret", "token", "password",
                 "passphrase", "client_secret", "account_key", "sas_token"):
        assert farm.secrets.is_secret_name(name), name
    for name in ("FARM_S3_BUCKET", "AWS_REGION", "AWS_ENDPOINT_URL", "endpoint_url",
                 "auto_mkdir", "anon", "HOME", "PATH", "TOX_TESTENV_PASSENV"):
        assert not farm.secrets.is_secret_name(name), name
    opts = {"key": "AKIAEXAMPLE123", "secret": "s3cr3t-value", "endpoint_url": "http://h:9000",
            "anon": False, "token": None}
    assert farm.secrets.option_secrets(opts) == ["AKIAEXAMPLE123", "s3cr3t-value"]
    monkeypatch.setenv("FARM_DB_PASSWORD", "pw-0123456789")
    monkeypatch.setenv("FARM_SHORT_TOKEN", "abc")  # too short to hide: left alone
    text = "x pw-0123456789 abc AKIAEXAMPLE123 http://h:9000"
    assert farm.secrets.redact_secrets(text, extra=farm.secrets.option_secrets(opts)) == (
        "x *** abc *** http://h:9000")
    assert farm.secrets.redact_secrets(("a", 1)) == ["a", 1]


def test_provenance_attrs_content():
    design = grid_design()
    attrs = provenance_attrs("a: 1\n", "h", design, 7, "independent", 64, 96,
                             prng=jax_prng_info())
    json.dumps(attrs)
    versions = json.loads(attrs["versions"])
    for pkg in ("python", "jax", "jaxlib", "numpy", "xarray", "zarr", "ray", "hydra-core"):
        assert versions[pkg]
    assert attrs["jax_prng_impl"] == "threefry2x32"
    assert provenance_attrs("a: 1\n", "h", design, 7, "common", 64, 96)["jax_prng_impl"] == ""
    assert attrs["root_seed"] == 7 and attrs["seeding"] == "independent"
    assert len(attrs["git_commit"]) == 40 or attrs["git_commit"] == "unknown"
    assert isinstance(attrs["git_dirty"], bool)
    assert json.loads(attrs["design"]) == json.loads(json.dumps(design.to_attrs()))


def test_prng_attrs_record_the_workers_settings_and_flag_mixtures(caplog):
    a = {"jax_prng_impl": "threefry2x32", "jax_enable_x64": False}
    b = {"jax_prng_impl": "rbg", "jax_enable_x64": False}
    assert prng_attrs([]) == {}
    assert prng_attrs([a, dict(a)]) == a
    assert prng_attrs([a], recorded={**a, "config": "x"}) == a  # a resumed cube, same
    assert prng_attrs([a], recorded={"jax_prng_impl": ""}) == a  # a new cube
    assert "not comparable" not in caplog.text
    mixed = prng_attrs([a, b])
    assert mixed["jax_prng_impl"] == "rbg | threefry2x32"
    assert "not comparable" in caplog.text
    assert prng_attrs([b], recorded=a)["jax_prng_impl"] == "rbg | threefry2x32"
    # another flag than the implementation also mixes the bits
    x64 = prng_attrs([a], recorded={**a, "jax_enable_x64": True})
    assert x64["jax_prng_impl"] == "threefry2x32" and "jax_prng_mixed" in x64
    # a cube already mixed stays mixed
    assert prng_attrs([a], recorded=mixed)["jax_prng_impl"] == "rbg | threefry2x32"


def test_block_write_is_fast(tmp_path):
    design = sampled_design(n=64 * 12, chunk=64)
    cube = create_cube(tmp_path / "fast.zarr", design, cube_attrs(design))
    results = [(b, fake_result(b)[:2]) for b in design.blocks()]
    cube.write_block(results[0][0], *results[0][1])  # opens the arrays
    times = []
    for block, res in results[1:]:
        t0 = time.perf_counter()
        cube.write_block(block, *res)
        times.append(time.perf_counter() - t0)
    # ~20-30 ms on an idle laptop core; generous bound for a loaded shared CI machine
    assert float(np.median(times)) < 0.25, times


def test_zarr_private_sync_is_still_there(tmp_path):
    """farm.store.layout.write_concurrently runs a block's ~26 writes in one pass of zarr's
    event loop with zarr's private ``zarr.core.sync.sync`` (zarr has no public way to
    await them together). If a zarr release removes or changes it, this fails by name
    (the farm then writes with public API, threads, slower)."""
    import asyncio
    import inspect

    from zarr.core.sync import sync  # ImportError: the private symbol is gone

    from farm.store import layout

    assert layout.zarr_sync() is sync
    assert next(iter(inspect.signature(sync).parameters)) == "coro"

    async def seven() -> int:
        return 7

    async def boom() -> None:
        raise KeyError("raised in the loop")

    assert sync(seven()) == 7  # the coroutine's result, in the calling thread
    with pytest.raises(KeyError, match="raised in the loop"):
        sync(boom())
    # as used: public AsyncArray.setitem of arrays opened with the synchronous API
    arrays = [zarr.create_array(zarr.storage.LocalStore(tmp_path / f"a{i}.zarr"), shape=(6,),
                                chunks=(3,), dtype="float32", fill_value=np.nan)
              for i in range(3)]

    async def write_all() -> None:
        await asyncio.gather(*(a.async_array.setitem(slice(0, 3), np.full(3, i, "float32"))
                               for i, a in enumerate(arrays)))

    assert sync(write_all()) is None
    for i, a in enumerate(arrays):
        np.testing.assert_array_equal(a[:], [i, i, i, np.nan, np.nan, np.nan])


def test_block_write_without_zarr_private_sync(tmp_path, monkeypatch):
    """The fallback if zarr drops its private sync: the same cube, written with threads."""
    from farm.store import layout

    design = grid_design()
    want = create_cube(tmp_path / "sync.zarr", design, cube_attrs(design))
    _fill(want, design, n_paths=0)
    monkeypatch.setattr(layout, "zarr_sync", lambda: None)
    got = create_cube(tmp_path / "threads.zarr", design, cube_attrs(design))
    _fill(got, design, n_paths=0)
    for var in (*PATH_OUTPUTS, *PROBABILITIES, "status"):
        np.testing.assert_array_equal(got._array(var)[...], want._array(var)[...])


def _write_blocks_in_worker(cube_bytes: bytes, indices: list[int]) -> None:
    from _cube_helpers import fake_result as fr
    from _cube_helpers import sampled_design as sd

    cube = pickle.loads(cube_bytes)
    design = sd(n=10, chunk=4)
    for i in indices:
        block = design.block(i)
        cube.write_block(block, *fr(block)[:2])


@pytest.mark.slow  # a spawned interpreter imports jax (via kernels) and xarray: ~10 s
def test_cube_pickles_and_writes_from_other_processes(tmp_path):
    import multiprocessing as mp

    design = sampled_design(n=10, chunk=4)
    cube = create_cube(tmp_path / "mp.zarr", design, cube_attrs(design))
    cube.cell_status()  # opens zarr handles, which must not be pickled
    payload = pickle.dumps(cube)
    proc = mp.get_context("spawn").Process(target=_write_blocks_in_worker, args=(payload, [0, 2]))
    proc.start()
    proc.join(120)
    assert proc.exitcode == 0
    assert list(cube.block_status(design)) == [1, 0, 1]
    with pytest.raises(ValueError, match="does not match"):
        cube.block_status(sampled_design(n=10, chunk=5))
    got = cube.dataset().p_btc_crash.values
    np.testing.assert_array_equal(got[:4], _expected(design, "p_btc_crash", kind="probs")[:4])


@pytest.mark.slow
def test_cube_on_object_store():
    with moto_s3() as opts:
        url = "s3://farm/runs/cube.zarr"
        design = grid_design()
        cube = create_cube(url, design, cube_attrs(design), storage_options=opts)
        _fill(cube, design)
        cube.mark_failed(design.block(1), "boom")
        cube.finalize()
        with pytest.raises(StoreExistsError):
            create_cube(url, design, cube_attrs(design), storage_options=opts)
        again = open_existing(url, opts, read_only=True)
        ds = again.dataset()
        np.testing.assert_array_equal(ds.drawdown_eq.values[4], _expected(design, "drawdown_eq")[4])
        assert list(again.block_status(design)) == [1, 2, 1]
        assert "1 failed" in store_summary(url, opts)
        assert opts["secret"] not in json.dumps(again.attrs)
        create_cube(url, design, cube_attrs(design), storage_options=opts, overwrite=True)
        assert (open_existing(url, opts).cell_status() == 0).all()


def test_a_cube_carries_cf_attributes(tmp_path):
    """xr.open_zarr shows long_name and UDUNITS units on every variable and coordinate,
    and the global Conventions, title and history (the CF conventions users know)."""
    design = grid_design()
    url = str(tmp_path / "cf.zarr")
    create_cube(url, design, cube_attrs(design, n_paths=16), store_paths=True)
    ds = xr.open_zarr(url, consolidated=False)
    udunits = {"1", "USD", "h", "d", "d/year", "year-1/2"}
    for name in [*ds.data_vars, *ds.coords]:
        attrs = ds[name].attrs
        assert attrs.get("long_name"), name
        if name != "stat":
            assert attrs.get("units") in udunits, (name, attrs.get("units"))
    assert ds["liquidated_long"].attrs["units"] == "USD"
    assert ds["time_to_trough"].attrs["units"] == "h"
    assert ds["p_systemic"].attrs["valid_range"] == [0.0, 1.0]
    assert "multiple of Oct 2025" in ds["leverage"].attrs["long_name"]
    assert ds.attrs["Conventions"] == "CF-1.10"
    assert ds.attrs["title"] and "created by farm run" in ds.attrs["history"]
