"""A run whose store lock is taken by another writer stops at once (real Ray, real stores).

Specification (the reliability issue): every refresh checks the owner token; when the
lock is taken (the record rewritten to another owner) the run submits nothing more,
records nothing more, exits 2 with one line "another writer took the store ..." naming
the store and the new holder, and never marks a block failed (status 2); the heartbeat
thread's finding stops the run within seconds even when no block completes; release
leaves the other writer's lock alone; a rerun once the other writer's lock is gone
resumes and gives a cube bit-identical to an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from _faults import intruder_record, rewrite_lock_at, write_lock_record

from conftest import FARM_SMALL, assert_identical, cube_arrays, farm_cfg
from farm.plan.convert import make_plan
from farm.run import sweep as sweepmod
from farm.run.sweep import run_sweep
from farm.store import lock as lockmod
from farm.store.cube import open_existing
from farm.store.lock import StoreLockedError, lock_url, read_lock

pytestmark = pytest.mark.usefixtures("ray_local")
REPO = Path(__file__).resolve().parents[2]
ONE_AT_A_TIME = ("runtime.workers=1", "runtime.max_in_flight=1")  # blocks run in order


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """The small sweep run once, uninterrupted."""
    tmp = tmp_path_factory.mktemp("ref")
    report = run_sweep(make_plan(farm_cfg(tmp, "runtime.workers=2", name="ref")))
    assert report.ok and report.done_now == 6
    return cube_arrays(tmp / "ref.zarr")


def _statuses(url: str, opts: dict | None = None) -> list[int]:
    return [int(s) for s in open_existing(url, opts, read_only=True).block_status()]


def _assert_taken_message(msg: str, store: str) -> None:
    assert "\n" not in msg and msg.startswith(f"another writer took the store {store}"), msg
    assert "intruder@elsewhere.example pid 4242" in msg, msg


def test_lock_rewritten_mid_run_stops_the_run_without_failing_blocks(tmp_path, reference,
                                                                    monkeypatch):
    monkeypatch.setattr(lockmod, "HEARTBEAT_S", 3600.0)  # the refresh after block 2 notices
    monkeypatch.setattr(sweepmod, "LOCK_REFRESH_S", 0.0)  # the run loop: after every block
    url = tmp_path / "lost.zarr"
    cfg = farm_cfg(tmp_path, *ONE_AT_A_TIME, name="lost")
    with pytest.raises(StoreLockedError) as err:
        run_sweep(make_plan(cfg), runner=rewrite_lock_at(2, lock_url(url)))
    _assert_taken_message(str(err.value), str(url))
    # block 2 was written by its worker; nothing after it was submitted; nothing failed
    assert _statuses(str(url)) == [1, 1, 1, 0, 0, 0]
    assert open_existing(str(url), read_only=True).failed_blocks() == {}
    # the release left the other writer's lock in place, and it still refuses a writer
    assert json.loads(Path(lock_url(url)).read_text())["token"] == "intruder-token"
    with pytest.raises(StoreLockedError, match=r"intruder@elsewhere\.example pid 4242"):
        run_sweep(make_plan(cfg))
    os.remove(lock_url(url))  # the other writer is done
    again = run_sweep(make_plan(cfg))
    assert again.ok and again.done_before == 3 and again.done_now == 3
    assert_identical(cube_arrays(url), reference)
    assert read_lock(str(url)) is None


def test_heartbeat_notices_a_lost_lock_while_no_block_completes(tmp_path, reference,
                                                                monkeypatch):
    monkeypatch.setattr(lockmod, "HEARTBEAT_S", 0.2)
    url = tmp_path / "stall.zarr"
    cfg = farm_cfg(tmp_path, *ONE_AT_A_TIME, name="stall")
    t0 = time.monotonic()
    with pytest.raises(StoreLockedError) as err:  # block 1 takes the lock, then stalls 60 s
        run_sweep(make_plan(cfg), runner=rewrite_lock_at(1, lock_url(url), stall_s=60))
    took = time.monotonic() - t0
    _assert_taken_message(str(err.value), str(url))
    assert took < 30, f"the lost lock was noticed after {took:.0f} s"
    assert _statuses(str(url)) == [1, 0, 0, 0, 0, 0]  # the stalled task was cancelled
    os.remove(lock_url(url))
    again = run_sweep(make_plan(cfg))
    assert again.ok and again.done_now == 5
    assert_identical(cube_arrays(url), reference)


def test_farm_run_exits_2_with_one_line_when_another_writer_takes_the_store(
        tmp_path, capsys, monkeypatch):
    from farm.cli import main

    monkeypatch.setattr(lockmod, "HEARTBEAT_S", 0.2)
    url = tmp_path / "cli.zarr"
    record, done = Path(lock_url(url)), threading.Event()

    def take_the_store() -> None:  # another writer, as soon as this run holds the lock
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not done.is_set():
            try:
                if json.loads(record.read_text()).get("pid") == os.getpid():
                    write_lock_record(str(record), intruder_record())
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.005)

    intruder = threading.Thread(target=take_the_store, daemon=True)
    intruder.start()
    try:
        code = main(["run", "--no-progress", *FARM_SMALL, f"store.url={url}",
                     *ONE_AT_A_TIME])
    finally:
        done.set()
        intruder.join(timeout=10)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert err[-1].startswith(f"farm: error: another writer took the store {url}"), err
    assert "intruder@elsewhere.example pid 4242" in err[-1]
    if Path(url).exists():
        assert 2 not in _statuses(str(url))


SWEEP_WITH_LOCK_TAKEN = textwrap.dedent("""
    import sys
    from _faults import rewrite_lock_at
    from farm.plan.compose import compose_config
    from farm.plan.convert import make_plan
    from farm.run import sweep
    from farm.run.sweep import run_sweep
    from farm.store import lock
    from farm.store.lock import StoreLockedError, lock_url

    lock.HEARTBEAT_S = 3600.0  # the refresh after block 2 notices (blocks in order)
    sweep.LOCK_REFRESH_S = 0.0  # the run loop refreshes after every block
    url, endpoint, overrides = sys.argv[1], sys.argv[2], sys.argv[3:]
    plan = make_plan(compose_config([*overrides, f"store.url={url}",
                                     f"store.endpoint_url={endpoint}"]))
    opts = plan.store.storage_options()
    try:
        run_sweep(plan, runner=rewrite_lock_at(2, lock_url(url), opts))
    except StoreLockedError as exc:
        print(exc, flush=True)
        sys.exit(2)
""")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_s3_lock_rewritten_mid_run_stops_and_a_rerun_resumes(tmp_path, reference):
    """On an object store (moto's S3 server on 127.0.0.1): the run stops, exit 2, no block
    failed, the other writer's lease is left in place; once it is gone a rerun resumes
    only the missing blocks and the cube equals the uninterrupted local one bit for bit."""
    from _cube_helpers import moto_s3

    with moto_s3() as opts:
        url = "s3://farm/runs/lost.zarr"
        endpoint = opts["endpoint_url"]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")]),
               "AWS_ACCESS_KEY_ID": opts["key"], "AWS_SECRET_ACCESS_KEY": opts["secret"],
               "AWS_DEFAULT_REGION": "us-east-1"}
        env.pop("RAY_ADDRESS", None)
        proc = subprocess.run(
            [sys.executable, "-c", SWEEP_WITH_LOCK_TAKEN, url, endpoint, *FARM_SMALL,
             *ONE_AT_A_TIME], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 2, proc.stderr[-3000:]
        _assert_taken_message(proc.stdout.strip(), url)
        s3 = {**{k: opts[k] for k in ("key", "secret")},
              "client_kwargs": {"endpoint_url": endpoint}}
        assert _statuses(url, s3) == [1, 1, 1, 0, 0, 0]
        assert read_lock(url, s3)["token"] == "intruder-token"  # left alone
        refused = subprocess.run(
            [sys.executable, "-m", "farm.cli", "run", "--no-progress", *FARM_SMALL,
             f"store.url={url}", f"store.endpoint_url={endpoint}", *ONE_AT_A_TIME],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        assert refused.returncode == 2 and "intruder@elsewhere.example" in refused.stderr
        lockmod.break_lock(url, s3)  # the other writer is done
        rerun = subprocess.run(
            [sys.executable, "-m", "farm.cli", "run", "--no-progress", *FARM_SMALL,
             f"store.url={url}", f"store.endpoint_url={endpoint}", "runtime.workers=1"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        assert _statuses(url, s3) == [1] * 6
        import xarray as xr

        from farm.store.storage import zarr_store

        ds = xr.open_zarr(zarr_store(url, s3, read_only=True))
        assert_identical({k: ds[k].values for k in ds.data_vars}, reference)
        assert read_lock(url, s3) is None
