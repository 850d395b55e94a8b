"""A sweep into ``s3://`` on an S3-compatible server (moto) on 127.0.0.1.

The run is killed (SIGKILL of the driver after 2 blocks), resumed, reported on with
``farm status`` and opened with ``analysis.open_cube``; it must equal the same sweep
on the local disk bit for bit, and no credential may reach the cube.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from _faults import kill_when_blocks_done
from _raycluster import REPO, free_ports

from conftest import FARM_SMALL, cube_arrays

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

BUCKET = "farm-test"
ACCESS_KEY = "AKIAFARMTESTKEY00001"
SECRET_KEY = "farm-test-secret/NotARealOne+0123456789abc"


@pytest.fixture
def s3_server(tmp_path):
    """moto's S3 server on 127.0.0.1 and an environment with fake credentials."""
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    (port,) = free_ports(1)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "RAY_ADDRESS"))}
    env.update({
        "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    })
    try:
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                     aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                     ).create_bucket(Bucket=BUCKET)
        yield endpoint, env
    finally:
        server.stop()


def _farm(args: list[str], env: dict, extra: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "farm.cli", *args], cwd=REPO,
                          env={**env, **(extra or {})}, capture_output=True, text=True,
                          timeout=600)


def test_s3_sweep_interrupted_resumed_equals_local(s3_server, tmp_path):
    from analysis import open_cube
    from farm.store.cube import open_existing

    endpoint, env = s3_server
    url = f"s3://{BUCKET}/runs/smoke.zarr"
    opts = {"client_kwargs": {"endpoint_url": endpoint}, "key": ACCESS_KEY,
            "secret": SECRET_KEY}
    run = ["run", "--no-progress", *FARM_SMALL, f"store.url={url}",
           f"store.endpoint_url={endpoint}", "runtime.workers=1"]

    proc = subprocess.Popen([sys.executable, "-m", "farm.cli", *run], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    kill_when_blocks_done(proc, lambda: open_existing(url, opts, read_only=True).block_status(),
                          2)
    assert proc.returncode == -9, proc.stderr.read()[-3000:]  # the driver died like kill -9
    done = open_existing(url, opts, read_only=True).block_status()
    assert 2 <= int(np.sum(done == 1)) < len(done), done

    # farm status on the object store (endpoint from the standard AWS variable).
    status = _farm(["status", url], env, {"AWS_ENDPOINT_URL_S3": endpoint})
    assert status.returncode == 0, status.stderr[-2000:]
    assert "pending" in status.stdout.lower(), status.stdout

    proc = _farm(run, env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert np.all(open_existing(url, opts, read_only=True).block_status() == 1)

    ds = open_cube(url, storage_options=opts)
    assert np.isin(ds["status"].values, (1, 3)).all()  # done (3: done, flagged)

    local = tmp_path / "local.zarr"
    proc = _farm(["run", "--no-progress", *FARM_SMALL, f"store.url={local}",
                  "runtime.workers=1"], env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ref = cube_arrays(local)
    got = {k: ds[k].values for k in ds.data_vars}
    assert set(got) == set(ref)
    for k in ref:
        np.testing.assert_array_equal(got[k], ref[k], err_msg=k)

    # No credential value anywhere in the cube's metadata or the objects beside it.
    import s3fs

    fs = s3fs.S3FileSystem(**opts)
    texts = [json.dumps(ds.attrs, default=str)]
    for key in fs.find(f"{BUCKET}/runs"):
        if key.endswith((".json", "zarr.json", ".zattrs", ".zmetadata")) or "lock" in key:
            texts.append(fs.cat_file(key).decode(errors="replace"))
    blob = "\n".join(texts)
    assert ACCESS_KEY not in blob and SECRET_KEY not in blob


@pytest.mark.slow
def test_adaptive_sweep_grows_a_cube_on_s3_as_on_disk(s3_server, tmp_path):
    """Waves appended to a cube on the object store (resized arrays, rewritten
    coordinates, consolidated metadata) give the cube the same waves write on disk."""
    from analysis import open_cube

    endpoint, env = s3_server
    small = ["sweep=adaptive", "~sweep.axes.correlation", "~sweep.axes.fed_put",
             "~sweep.axes.depth_btc", "~sweep.axes.kappa", "sweep.paths=16",
             "sweep.adaptive.initial_cells=16", "sweep.adaptive.wave_cells=8",
             "sweep.adaptive.block_cells=4", "sweep.adaptive.max_waves=3",
             "sweep.adaptive.max_paths=48", "sweep.adaptive.stop_flips=0", "runtime.workers=1"]
    url = f"s3://{BUCKET}/runs/adaptive.zarr"
    opts = {"client_kwargs": {"endpoint_url": endpoint}, "key": ACCESS_KEY,
            "secret": SECRET_KEY}
    proc = _farm(["run", "--no-progress", *small, f"store.url={url}",
                  f"store.endpoint_url={endpoint}"], env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    local = tmp_path / "adaptive.zarr"
    proc = _farm(["run", "--no-progress", *small, f"store.url={local}"], env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ds, ref = open_cube(url, storage_options=opts), open_cube(str(local))
    assert ds.sizes["cell"] == ref.sizes["cell"] == 16 + 2 * 8
    for k in [*ref.data_vars, "wave", "replicate", "leverage", "integration"]:
        np.testing.assert_array_equal(ds[k].values, ref[k].values, err_msg=k)
