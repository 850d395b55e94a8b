"""The `farm` CLI follows the conventions its users know (docs/configuration.md, "Command
line"): Hydra's ``--cfg job``; Hydra's launcher (``-m``, ``hydra.*`` keys) refused in one
line; ``-v``/``-q`` anywhere; a missing store is a user error (exit 2); a closed stdout
pipe (``farm status X | head -1``) ends quietly. In-process through ``farm.cli.main``;
the pipe tests run the real ``farm`` executable."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import FARM_SMALL, run_cli
from farm.cli import build_parser, main

FARM = Path(sys.executable).parent / "farm"


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    """``farm ARGV`` in-process: (exit status, stdout, stderr); never a traceback."""
    code, out, err = run_cli(capsys, *argv)
    assert "Traceback" not in err, err
    return code, out, err


def one_error(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("farm: error: "), err
    return lines[0]


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory, ray_local):
    """A finished small sweep run as a user runs it (progress bar on): (url, its stderr)."""
    url = tmp_path_factory.mktemp("conv") / "demo.zarr"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(["run", *FARM_SMALL, f"store.url={url}"]) == 0
    return url, err.getvalue()


# ---- 1. --cfg job|hydra|all, as Hydra's


@pytest.mark.parametrize("flag", ["--cfg", "-c"])
def test_cfg_job_prints_the_composed_config_as_yaml_and_runs_nothing(flag, tmp_path, capsys):
    url = tmp_path / "never.zarr"
    code, out, err = cli(capsys, "run", flag, "job", "sweep=smoke", "seed=7",
                         "sweep.axes.leverage=[0,2]", f"store.url={url}")
    assert code == 0, err
    cfg = yaml.safe_load(out)
    assert cfg["seed"] == 7 and cfg["name"] == "sweep-smoke"
    assert cfg["sweep"]["axes"]["leverage"] == [0, 2] and cfg["store"]["url"] == str(url)
    assert set(cfg) >= {"model", "sweep", "runtime", "store"}
    assert not url.exists() and not list(tmp_path.iterdir())


def test_cfg_job_with_a_package_prints_that_key_only(capsys):
    code, out, err = cli(capsys, "run", "sweep=smoke", "--cfg", "job", "-p", "sweep",
                         "sweep.paths=48", "--resolve")
    assert code == 0, err
    assert out.startswith("# @package sweep\n")
    assert yaml.safe_load(out)["paths"] == 48 and "model" not in yaml.safe_load(out)
    code, out, _ = cli(capsys, "run", "--cfg", "job", "--package", "model.kappa",
                       "model.kappa=0.2")
    assert code == 0 and out.splitlines()[-1] == "0.2"
    code, _, err = cli(capsys, "run", "--cfg", "job", "-p", "nope")
    assert code == 2 and "--package" in one_error(err) and "sweep" in err


def test_cfg_hydra_and_all_say_the_farm_has_no_hydra_runtime_config(capsys):
    code, out, err = cli(capsys, "run", "--cfg", "hydra", "sweep=smoke")
    assert code == 0 and out == ""
    assert len(err.splitlines()) == 1 and "no Hydra runtime config" in err
    code, out, err = cli(capsys, "run", "--cfg", "all", "sweep=smoke")
    assert code == 0 and yaml.safe_load(out)["name"] == "sweep-smoke"
    assert "no Hydra runtime config" in err
    code, _, err = cli(capsys, "run", "--cfg", "nope")
    assert code == 2 and "job" in one_error(err)


def test_cfg_job_refuses_a_bad_config_in_one_line(capsys):
    code, out, err = cli(capsys, "run", "--cfg", "job", "sweep.paths=many")
    assert code == 2 and out == "" and "sweep.paths" in one_error(err)


# ---- 2. Hydra's launcher: -m/--multirun and hydra.* keys refused in one line


@pytest.mark.parametrize("argv", [
    ["run", "-m", "sweep=smoke"],
    ["run", "sweep=smoke", "--multirun", "seed=1"],
    ["calibrate", "--multirun"],
    ["submit", "-m", "sweep=smoke"],
])
def test_multirun_exits_2_saying_the_farm_sweeps_itself(argv, capsys):
    code, out, err = cli(capsys, *argv)
    line = one_error(err)
    assert code == 2 and out == ""
    assert "multirun" in line and "sweep.axes.NAME=[" in line


@pytest.mark.parametrize(("override", "key", "value", "instead"), [
    ("hydra.sweep.dir=out", "hydra.sweep.dir", "'out'", "store.url"),
    ("hydra.run.dir=x", "hydra.run.dir", "'x'", "store.url"),
    ("++hydra.sweep.subdir=a", "hydra.sweep.subdir", "'a'", "store.url"),
    ("hydra.job.name=foo", "hydra.job.name", "'foo'", "name="),
    ("hydra/launcher=joblib", "hydra/launcher", "'joblib'", "runtime="),
    ("hydra.sweeper.params={seed:1}", "hydra.sweeper.params", "'{seed:1}'", "sweep.axes"),
    ("hydra.verbose=true", "hydra.verbose", "'true'", "farm -v"),
])
@pytest.mark.parametrize("mode", ["--dry-run", "--no-progress"])
def test_hydra_keys_exit_2_naming_key_value_and_what_to_use(override, key, value, instead,
                                                           mode, tmp_path, capsys):
    url = tmp_path / "never.zarr"
    code, out, err = cli(capsys, "run", mode, *FARM_SMALL, f"store.url={url}", override)
    line = one_error(err)
    assert code == 2 and out == ""
    assert f"invalid config {key}={value}" in line and "no Hydra runtime" in line
    assert f"allowed: {instead}" in line
    assert not url.exists() and not list(tmp_path.iterdir())


def test_a_key_that_only_starts_with_hydra_is_not_taken_for_one(capsys):
    code, _, err = cli(capsys, "run", "--dry-run", "hydrant=1")
    assert code == 2 and "unknown config key hydrant" in one_error(err)


# ---- 3. -v/--verbose and -q/--quiet anywhere


@pytest.mark.parametrize(("argv", "verbose", "quiet"), [
    (["-v", "run", "sweep=smoke"], True, False),
    (["run", "-v", "sweep=smoke"], True, False),
    (["run", "sweep=smoke", "--verbose"], True, False),
    (["--quiet", "run", "sweep=smoke"], False, True),
    (["run", "sweep=smoke", "-q", "seed=1"], False, True),
    (["status", "x.zarr", "-q"], False, True),
    (["report", "-v", "x.zarr"], True, False),
    (["submit", "sweep=smoke", "-q"], False, True),
    (["logs", "raysubmit_1", "-v"], True, False),
    (["run", "sweep=smoke"], False, False),
])
def test_verbose_and_quiet_are_accepted_before_or_after_the_subcommand(argv, verbose, quiet):
    args = build_parser().parse_args(argv)
    assert (args.verbose, args.quiet) == (verbose, quiet)
    if args.command in ("run", "submit"):
        assert "-q" not in args.overrides and "-v" not in args.overrides


def test_verbose_and_quiet_together_are_a_usage_error(capsys):
    code, _, err = cli(capsys, "-v", "run", "-q", "--dry-run", "sweep=smoke")
    assert code == 2 and "-q/--quiet" in one_error(err)


def test_quiet_run_shows_no_progress_bar_and_no_notes(demo_store, tmp_path, capsys):
    _, loud = demo_store  # the same run without -q: the bar and the note
    assert "farm: running on" in loud and "cells:" in loud and "%|" in loud
    url = tmp_path / "quiet.zarr"
    code, out, err = cli(capsys, "run", *FARM_SMALL, f"store.url={url}", "-q")
    assert code == 0, err
    assert "0 failed" in out  # the result still on stdout
    assert "farm: running on" not in err and "cells:" not in err and "%|" not in err
    code, out, err = cli(capsys, "-q", "run", *FARM_SMALL, f"store.url={url}")
    assert code == 0 and "6 already done" in out and "farm: running on" not in err


def test_verbose_status_still_prints_the_status(demo_store, capsys):
    url, _ = demo_store
    code, out, err = cli(capsys, "status", str(url), "-v")
    assert code == 0 and "done" in out, err


# ---- 4. a store that does not exist: exit 2, one line, nothing written


@pytest.mark.parametrize("command", [["status"], ["status", "--verify"], ["repair"],
                                     ["report", "--no-fan", "--no-channels"]])
def test_a_missing_store_exits_2_in_one_line_and_creates_nothing(command, tmp_path, capsys,
                                                                 monkeypatch):
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "sub" / "missing.zarr"
    for store in (str(missing), "nothing.zarr", f"file://{missing}"):
        code, out, err = cli(capsys, *command, store)
        line = one_error(err)
        assert code == 2, err
        assert ("missing.zarr" in line or "nothing.zarr" in line) and "not a farm cube" in line
        assert out == ""
    assert not list(tmp_path.iterdir())  # no store, no report, no lock beside them


@pytest.mark.parametrize("command", ["status", "repair", "report"])
def test_an_empty_store_argument_is_a_usage_error(command, capsys):
    code, _, err = cli(capsys, command, "")
    assert code == 2 and "empty path" in one_error(err)


# ---- 5. a closed stdout pipe: quiet, status 141 (128 + SIGPIPE)


@pytest.mark.parametrize("argv", [["status", "{url}"], ["run", "--cfg", "job"]])
def test_a_closed_stdout_pipe_ends_quietly(argv, demo_store):
    url, _ = demo_store
    proc = subprocess.Popen([str(FARM), *(a.format(url=url) for a in argv)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before farm writes a byte
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert err == ""  # no BrokenPipeError, no "Exception ignored", no traceback


def test_status_piped_to_head_prints_its_first_line_only(demo_store):
    url, _ = demo_store
    whole = subprocess.run([str(FARM), "status", str(url)], capture_output=True, text=True,
                           timeout=120)
    assert whole.returncode == 0 and len(whole.stdout.splitlines()) > 1, whole.stderr
    proc = subprocess.run(["bash", "-c", f'"{FARM}" status "{url}" | head -1'],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout == whole.stdout.splitlines(keepends=True)[0]


def _complete(line: str) -> list[str]:
    """What the shell would offer for ``line`` (argcomplete's protocol, a real process)."""
    import os

    farm = str(Path(sys.executable).with_name("farm"))
    env = {**os.environ, "COMP_LINE": line, "COMP_POINT": str(len(line)), "_ARGCOMPLETE": "1",
           "_ARGCOMPLETE_IFS": "\n"}
    out = subprocess.run(f"{farm} 8>&1 9>/dev/null", shell=True, env=env, capture_output=True,
                         text=True, timeout=60)
    return [c.strip() for c in out.stdout.split("\n")]


def test_shell_completion_offers_subcommands_groups_and_keys():
    assert "explore" in _complete("farm ex")
    offered = _complete("farm run sw")
    assert "sweep=smoke" in offered and "sweep.paths=" in offered
    assert "model=oct2025" in _complete("farm run mod")
    assert "--dry-run" in _complete("farm run --dr")
