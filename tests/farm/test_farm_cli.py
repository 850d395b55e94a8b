"""The `farm` CLI: dry run, user errors (exit 2, one line, no traceback), refusals."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FARM_SMALL
from farm.cli import main
from farm.store.lock import StoreLock

REPO = Path(__file__).resolve().parents[2]


def _tree_digest(path: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(path)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def finished_store(tmp_path_factory, ray_local):
    url = tmp_path_factory.mktemp("cli") / "done.zarr"
    assert main(["run", "--no-progress", *FARM_SMALL, f"store.url={url}"]) == 0
    return url


def test_dry_run_prints_the_cell_count_the_run_writes_and_creates_nothing(tmp_path, capsys,
                                                                         finished_store):
    url = tmp_path / "dry.zarr"
    assert main(["run", "--dry-run", *FARM_SMALL, f"store.url={url}"]) == 0
    out = capsys.readouterr().out
    cells = int(re.search(r"cells\s*:\s*(\d+)", out).group(1))
    blocks = int(re.search(r"blocks\s*:\s*(\d+)", out).group(1))
    assert "paths" in out and "size" in out and "time" in out
    assert not url.exists() and not list(tmp_path.iterdir())
    import analysis

    ds = analysis.open_cube(str(finished_store))
    assert cells == ds["status"].size == 24 and blocks == 6


def test_dry_run_says_what_the_run_would_do_with_the_store(tmp_path, capsys, finished_store):
    """New, complete (nothing to do), another configuration (refused, naming the change),
    replaced (overwrite), not a cube: the dry run reads the store and says it; it writes
    nothing either way."""
    def store_line(*args: str) -> str:
        assert main(["run", "--dry-run", *FARM_SMALL, *args]) == 0
        return next(ln for ln in capsys.readouterr().out.splitlines() if "store    :" in ln)

    before = _tree_digest(finished_store)
    assert "new: the run would create it" in store_line(f"store.url={tmp_path / 'n.zarr'}")
    assert "complete (24 of 24 cells): the run would do nothing" in store_line(
        f"store.url={finished_store}")
    other = store_line(f"store.url={finished_store}", "sweep.paths=17")
    assert "would be refused" in other and "sweep.paths" in other
    assert "start afresh" in store_line(f"store.url={finished_store}", "store.overwrite=true")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.txt").write_text("x")
    assert "refused" in store_line(f"store.url={tmp_path / 'junk'}")
    assert _tree_digest(finished_store) == before and not (tmp_path / "n.zarr").exists()


@pytest.mark.parametrize(("override", "key"), [
    ("sweep.no_such_key=1", "sweep.no_such_key"),
    ("sweep.paths=many", "sweep.paths"),
    ("model.leverage=-1", "model.leverage"),
    ("sweep.axes.leverage=[]", "sweep.axes.leverage"),
    ("sweep.axes.leverage=[1,1]", "sweep.axes.leverage"),
    ("sweep.axes.correlation=[0.5,1.5]", "sweep.axes.correlation"),
])
def test_bad_config_exits_2_with_one_line_naming_the_key(override, key, finished_store, capsys):
    before = _tree_digest(finished_store)
    code = main(["run", "--no-progress", *FARM_SMALL, f"store.url={finished_store}", override])
    err = capsys.readouterr().err
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("farm: error:"), err
    assert key in lines[0] and "Traceback" not in err
    assert _tree_digest(finished_store) == before  # nothing in the existing store damaged


@pytest.mark.parametrize(("override", "key", "value", "allowed"), [
    ("model.fund_capital=0", "model.fund_capital", "fund_capital=0",
     "allowed: [1e+06, 1e+14] (USD)"),
    ("model.bank_capital=0", "model.bank_capital", "bank_capital=0",
     "allowed: [1e+06, 1e+15] (USD)"),
    ("model.jump_btc=inf", "model.jump_btc", "jump_btc=inf", "allowed: [-3, 3] (log return)"),
    ("model.jump_btc=nan", "model.jump_btc", "jump_btc=nan", "allowed: [-3, 3] (log return)"),
    ("model.jump_eq=-inf", "model.jump_eq", "jump_eq=-inf", "allowed: [-3, 3] (log return)"),
    ("model.leverage=1e308", "model.leverage", "leverage=1e+308", "allowed: [0, 10]"),
    ("sweep.axes.leverage=[0,1e300]", "sweep.axes.leverage", "leverage=1e+300",
     "allowed: [0, 10]"),
    # the treasury covenant: a start LTV at or above it is a leverage problem
    ("model.leverage=5", "model.leverage", "leverage=5", "allowed: leverage < 3.571"),
    ("sweep.axes.leverage=[1,5]", "sweep.axes.leverage", "leverage=5",
     "allowed: leverage < 3.571"),
])
def test_out_of_range_model_values_exit_2_naming_key_value_and_range(override, key, value,
                                                                      allowed, tmp_path,
                                                                      capsys):
    url = tmp_path / "never.zarr"
    code = main(["run", "--no-progress", *FARM_SMALL, f"store.url={url}", override])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("farm: error:"), err
    assert f"invalid config {key}:" in lines[0] and value in lines[0] and allowed in lines[0]
    assert "Traceback" not in err and not url.exists()


def test_store_from_another_config_is_refused_naming_the_difference(finished_store, capsys):
    before = _tree_digest(finished_store)
    code = main(["run", "--no-progress", *FARM_SMALL, f"store.url={finished_store}",
                 "sweep.paths=64", "model.kappa=0.3"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "sweep.paths" in err and "32 -> 64" in err and "model.kappa" in err
    assert "overwrite" in err
    assert _tree_digest(finished_store) == before


def test_second_concurrent_run_is_refused(finished_store, capsys):
    with StoreLock(str(finished_store)):
        code = main(["run", "--no-progress", *FARM_SMALL, f"store.url={finished_store}"])
    err = capsys.readouterr().err
    assert code == 2 and "lock" in err.lower(), err


def test_status_reports_blocks(finished_store, capsys):
    assert main(["status", str(finished_store)]) == 0
    out = capsys.readouterr().out
    assert "6" in out and "done" in out


def test_cli_process_exit_code_and_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "farm.cli", "run", "sweep=nope",
                           f"store.url={tmp_path / 'x.zarr'}"], capture_output=True, text=True,
                          cwd=REPO, env=dict(os.environ), timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "sweep" in proc.stderr
    assert not (tmp_path / "x.zarr").exists()


def test_summary_splits_the_wall_time_into_setup_and_blocks():
    from farm.plan.compose import compose_config
    from farm.run.sweep import RunReport
    from farm.run.texts import summary_text

    cfg = compose_config(["sweep=smoke"])
    report = RunReport("results/x.zarr", 24, 1, 0, done_now=1, seconds=42.0,
                       setup_seconds=5.25, blocks_seconds=36.0, ray_started=True)
    assert "wall   : 42 s (setup 5.2 s, Ray start included; blocks 36 s)" in summary_text(
        report, cfg)
    report.ray_started = False
    assert "(setup 5.2 s; blocks 36 s)" in summary_text(report, cfg)
    report.done_now = 0  # nothing ran: no split
    assert "wall   : 42 s\n" in summary_text(report, cfg)


# ---- a store that cannot be written: exit 2, one line naming it and the OS reason, and
# nothing already computed is lost (a rerun where it can be written resumes)


def _one_error_line(err: str) -> str:
    """The one error line, last on stderr (after the run's own notes, if it had started)."""
    errors = [ln for ln in err.splitlines() if ln.startswith("farm: error: ")]
    assert len(errors) == 1 and err.splitlines()[-1] == errors[0], err
    assert "Traceback" not in err
    return errors[0]


def test_a_store_that_turns_read_only_at_the_end_exits_2_and_keeps_its_blocks(
        tmp_path, capsys, monkeypatch, ray_local):
    """The filesystem refuses the driver's last write (EROFS) after the workers wrote
    every block: exit 2 naming the store; the rerun finds all 6 blocks done."""
    import errno

    from farm.store.cube import Cube

    url = tmp_path / "ro.zarr"

    def read_only(self, attrs=None):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(url / "zarr.json"))

    monkeypatch.setattr(Cube, "finalize", read_only)
    code = main(["run", "--no-progress", *FARM_SMALL, f"store.url={url}"])
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2
    assert f"cannot write the store {url}" in line and "Read-only file system" in line
    monkeypatch.undo()
    assert main(["run", "--no-progress", *FARM_SMALL, f"store.url={url}"]) == 0
    assert "6 already done, 0 run now, 0 failed" in capsys.readouterr().out


def _read_only_prefix(path: Path) -> list[str] | None:
    """A command prefix that runs a command with ``path`` bind-mounted read-only (a user
    and mount namespace: root cannot write there either), or None where that is denied."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    script = (f'mount --bind "{path}" "{path}" && mount -o remount,bind,ro "{path}" && '
              'exec "$@"')
    probe = subprocess.run([unshare, "-rm", "sh", "-c", script, "sh", "true"],
                           capture_output=True, timeout=30)
    return [unshare, "-rm", "sh", "-c", script, "sh"] if probe.returncode == 0 else None


def test_a_read_only_store_exits_2_naming_it_and_loses_nothing(tmp_path, capsys, ray_local):
    """A store on a read-only mount with 4 of its 6 blocks done: `farm run` exits 2 with
    one line (the store, the OS reason), changes nothing; the same run on a writable
    mount then computes only the 2 missing blocks."""
    from _faults import failing_blocks

    from conftest import farm_cfg
    from farm.plan.convert import make_plan
    from farm.run.sweep import run_sweep

    url = tmp_path / "cube.zarr"
    report = run_sweep(make_plan(farm_cfg(tmp_path)), runner=failing_blocks([1, 4]))
    assert sorted(report.failed) == [1, 4] and report.done_now == 4
    prefix = _read_only_prefix(url)
    if prefix is None:
        pytest.skip("no user/mount namespaces here: cannot mount the store read-only")
    before = _tree_digest(url)
    proc = subprocess.run([*prefix, sys.executable, "-m", "farm.cli", "run", "--no-progress",
                           *FARM_SMALL, f"store.url={url}"], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env=dict(os.environ))
    line = _one_error_line(proc.stderr)
    assert proc.returncode == 2, proc.stderr
    assert f"cannot write the store {url}" in line and "Read-only file system" in line
    assert _tree_digest(url) == before
    assert main(["run", "--no-progress", *FARM_SMALL, f"store.url={url}"]) == 0
    assert "4 already done, 2 run now, 0 failed" in capsys.readouterr().out
