"""`farm submit` runs the job with the cluster's runtime, whatever runtime the user typed.

The job's command is `farm run runtime=cluster ...` (a `farm run` inside a Ray job with
the local runtime would start a second Ray on the head node, or fail); an explicit
`runtime=cluster` is kept once; any other runtime is refused in one line, exit 2,
before anything is sent. A fake Jobs API client records what would be submitted.
"""

from __future__ import annotations

import shlex

import pytest

import farm.run.submit as sm
from farm.cli import main


class _FakeClient:
    def __init__(self) -> None:
        self.entrypoints: list[str] = []

    def submit_job(self, *, entrypoint: str, runtime_env: dict) -> str:
        self.entrypoints.append(entrypoint)
        return "raysubmit_fake"


@pytest.fixture
def jobs(monkeypatch):
    fake = _FakeClient()
    monkeypatch.setattr(sm, "_client", lambda address: fake)
    return fake


def _submitted(jobs: _FakeClient, *overrides: str, capsys) -> list[str]:
    assert main(["submit", "--address", "http://127.0.0.1:9", *overrides]) == 0
    assert capsys.readouterr().out.strip() == "raysubmit_fake"
    (entrypoint,) = jobs.entrypoints
    jobs.entrypoints.clear()
    return shlex.split(entrypoint)


def test_the_readme_command_runs_with_the_cluster_runtime(jobs, capsys):
    args = _submitted(jobs, "sweep=smoke", "store.url=s3://bucket/sweep.zarr", capsys=capsys)
    assert args[:2] == ["farm", "run"]
    assert args.count("runtime=cluster") == 1
    assert {"sweep=smoke", "store.url=s3://bucket/sweep.zarr"} <= set(args)


def test_an_explicit_cluster_runtime_is_kept_once_with_its_settings(jobs, capsys):
    args = _submitted(jobs, "runtime=cluster", "sweep=smoke", "runtime.max_in_flight=8",
                      capsys=capsys)
    assert args.count("runtime=cluster") == 1
    assert "runtime.max_in_flight=8" in args and "sweep=smoke" in args


@pytest.mark.parametrize("choice", ["runtime=local", "+runtime=local", "~runtime"])
def test_another_runtime_is_refused_in_one_line_before_submitting(jobs, capsys, choice):
    assert main(["submit", "--address", "http://127.0.0.1:9", "sweep=smoke", choice]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and choice in err and "runtime=cluster" in err, err
    assert not jobs.entrypoints
