"""Helpers for the cube/lock/status tests: small designs, fake block results, a moto S3."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import pytest

from farm.plan.design import Design
from kernels.outputs import PATH_OUTPUTS, PROBABILITIES, STATS


def grid_design(shape: tuple[int, int] = (5, 3), chunks: tuple[int, int] = (2, 3)) -> Design:
    """A 2-axis grid (leverage x depth) with a short last chunk along leverage."""
    lev = np.linspace(1.0, 20.0, shape[0])
    dep = np.linspace(0.1, 1.0, shape[1])
    mesh = np.meshgrid(lev, dep, indexing="ij")
    table = np.stack([m.ravel() for m in mesh], axis=-1)
    return Design("grid", ("leverage", "depth"), ("leverage", "depth"), shape, chunks,
                  {"leverage": lev, "depth": dep}, table)


def sampled_design(n: int = 10, chunk: int = 4, seed: int = 0) -> Design:
    """An lhs-like design: dim ``cell`` with per-cell ``leverage``/``depth`` coordinates."""
    table = np.random.default_rng(seed).random((n, 2)) * [20.0, 1.0]
    coords = {"cell": np.arange(n), "leverage": table[:, 0].copy(), "depth": table[:, 1].copy()}
    return Design("lhs", ("leverage", "depth"), ("cell",), (n,), (chunk,), coords, table)


def fake_result(block, n_paths: int = 0, seed: int = 0):
    """Deterministic stats/probs/paths for a block, as the kernel would return them."""
    rng = np.random.default_rng([seed, block.index])
    n = len(block.cells)
    stats = {v: rng.random((n, len(STATS))).astype(np.float32) for v in PATH_OUTPUTS}
    probs = {p: rng.random(n).astype(np.float32) for p in PROBABILITIES}
    paths = {v: rng.random((n, n_paths)).astype(np.float32) for v in PATH_OUTPUTS}
    return stats, probs, (paths if n_paths else None)


def cube_attrs(design, *, config_yaml: str = "model:\n  leverage: 10.0\nsweep:\n  paths: 16\n",
               config_hash: str = "hash-a", n_paths: int = 16) -> dict:
    from farm.store.provenance import provenance_attrs

    return provenance_attrs(config_yaml, config_hash, design, 42, "common", n_paths, 8)


@contextlib.contextmanager
def moto_s3() -> Iterator[dict]:
    """A moto S3 server on 127.0.0.1 with bucket ``farm``; yields storage options."""
    server_mod = pytest.importorskip("moto.server")
    s3fs = pytest.importorskip("s3fs")
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    opts = {"endpoint_url": f"http://{host}:{port}", "key": "testing-key-id",
            "secret": "testing-s3-secret-value"}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        with contextlib.suppress(FileExistsError):  # moto's state is per process
            s3fs.S3FileSystem(**opts, skip_instance_cache=True).mkdir("farm")
        try:
            yield opts
        finally:
            server.stop()
