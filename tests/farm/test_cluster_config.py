"""cluster.yaml / cluster-gcp.yaml against Ray's schema; farm submit against nothing and
against a dashboard that never answers; cluster_runtime helpers. Nothing here starts Ray
or binds a socket beyond 127.0.0.1."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import jsonschema
import pytest
import yaml

from farm.run import cluster as cr
from farm.run import submit as sm

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_FILES = ["cluster.yaml", "cluster-gcp.yaml"]
FAKE_SECRET = "farm-test-secret-value-0123456789"


def _ray_schema() -> dict:
    import ray.autoscaler

    return json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())


def _load(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text())


@pytest.mark.parametrize("name", CLUSTER_FILES)
def test_cluster_yaml_passes_ray_schema(name):
    from ray.autoscaler._private.util import prepare_config, validate_config

    raw = _load(name)
    jsonschema.validate(raw, _ray_schema())  # the file as written
    full = prepare_config(copy.deepcopy(raw))  # what `ray up` validates: merged with defaults
    validate_config(full)
    assert full["head_node_type"] in full["available_node_types"]
    workers = [t for n, t in full["available_node_types"].items() if n != full["head_node_type"]]
    assert workers and all(0 <= t["min_workers"] <= t["max_workers"] for t in workers)
    assert full["max_workers"] >= max(t["max_workers"] for t in workers)


def test_schema_check_rejects_a_typo():
    raw = _load("cluster.yaml")
    raw["max_wokers"] = 3
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(raw, _ray_schema())


@pytest.mark.parametrize("name", CLUSTER_FILES)
def test_cluster_yaml_installs_the_lock_and_keeps_the_dashboard_private(name):
    raw = _load(name)
    setup = " ".join(raw["setup_commands"])
    assert "uv sync --frozen" in setup
    head = " ".join(raw["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head
    assert "0.0.0.0" not in (ROOT / name).read_text()
    text = (ROOT / name).read_text().lower()
    for word in ("aws_secret_access_key", "aws_access_key_id", "private_key"):
        assert word not in text


# ---- farm submit ----------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_submit_to_nothing_fails_fast_with_one_line(tmp_path):
    port = _free_port()  # closed again: nothing listens there
    t0 = time.monotonic()
    with pytest.raises(sm.SubmitError) as err:
        sm.submit(["sweep=smoke"], address=f"http://127.0.0.1:{port}", follow=False,
                  working_dir=str(tmp_path), out=io.StringIO())
    assert time.monotonic() - t0 < 10
    msg = str(err.value)
    assert "\n" not in msg and f"127.0.0.1:{port}" in msg


@pytest.mark.parametrize("fn", ["list_jobs", "logs", "stop"])
def test_other_commands_fail_fast_too(fn):
    addr = f"127.0.0.1:{_free_port()}"
    args = {"list_jobs": (addr,), "logs": ("raysubmit_x", addr, False),
            "stop": ("raysubmit_x", addr)}[fn]
    t0 = time.monotonic()
    with pytest.raises(sm.SubmitError):
        getattr(sm, fn)(*args, out=io.StringIO())
    assert time.monotonic() - t0 < 10


def test_address_resolution(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert sm.resolve_address(None) == sm.DEFAULT_ADDRESS
    monkeypatch.setenv("RAY_ADDRESS", "http://10.0.0.5:8265/")
    assert sm.resolve_address(None) == "http://10.0.0.5:8265"
    assert sm.resolve_address("127.0.0.1:9000") == "http://127.0.0.1:9000"
    for bad in ("auto", "ray://head:10001"):
        with pytest.raises(sm.SubmitError):
            sm.resolve_address(bad)


def test_entrypoint_quotes_overrides():
    ep = sm.build_entrypoint(["sweep.axes.leverage=[0.5, 1.5]", "name=a b", "seed=3"])
    assert ep == "farm run 'sweep.axes.leverage=[0.5, 1.5]' 'name=a b' seed=3"


def test_ray_private_do_request_is_still_there():
    """farm submit adds timeouts by overriding ray's private
    ``SubmissionClient._do_request(method, endpoint, **kwargs)`` (ray's public API has no
    timeout). A ray release that removes it or stops passing extra keyword arguments on
    to ``requests`` fails here by name."""
    import inspect

    from ray.dashboard.modules.dashboard_sdk import SubmissionClient
    from ray.job_submission import JobSubmissionClient

    assert issubclass(JobSubmissionClient, SubmissionClient)
    params = inspect.signature(SubmissionClient._do_request).parameters
    assert list(params)[:3] == ["self", "method", "endpoint"]
    assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    cls = sm.timeout_client_class()
    assert issubclass(cls, JobSubmissionClient) and "_do_request" in vars(cls)
    assert "timeout" not in inspect.signature(JobSubmissionClient).parameters  # still none


@contextlib.contextmanager
def _silent_dashboard():
    """A real TCP server on 127.0.0.1 that accepts every connection and never answers.
    Yields (address, accepted connections)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []

    def accept_and_stay_silent():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            accepted.append(conn)

    threading.Thread(target=accept_and_stay_silent, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}", accepted
    finally:
        server.close()
        for conn in accepted:
            conn.close()


@pytest.mark.timeout(60)  # without the response timeout each call waited 300 s
@pytest.mark.parametrize("fn", ["submit", "list_jobs", "logs", "stop"])
def test_silent_dashboard_fails_in_seconds_naming_the_address(fn, monkeypatch, tmp_path):
    """A dashboard that accepts connections but never answers: every command gives up
    after $FARM_SUBMIT_TIMEOUT seconds with one line naming the address."""
    monkeypatch.setenv("FARM_SUBMIT_TIMEOUT", "1.5")
    with _silent_dashboard() as (addr, accepted):
        call = {"submit": lambda: sm.submit(["sweep=smoke"], address=addr, follow=True,
                                            working_dir=str(tmp_path), out=io.StringIO()),
                "list_jobs": lambda: sm.list_jobs(addr, out=io.StringIO()),
                "logs": lambda: sm.logs("raysubmit_x", addr, True, out=io.StringIO()),
                "stop": lambda: sm.stop("raysubmit_x", addr, out=io.StringIO())}[fn]
        t0 = time.monotonic()
        with pytest.raises(sm.SubmitError) as err:
            call()
        elapsed = time.monotonic() - t0
        assert accepted  # it did connect: the answer is what never came
    msg = str(err.value)
    assert elapsed < 10, elapsed
    assert "\n" not in msg and f"http://{addr}" in msg and "did not answer" in msg, msg
    assert "within 1.5 s" in msg and "FARM_SUBMIT_TIMEOUT" in msg, msg


def test_response_timeout_is_a_few_seconds_and_configurable(monkeypatch):
    from farm.run import jobclient

    monkeypatch.delenv("FARM_SUBMIT_TIMEOUT", raising=False)
    assert jobclient.CONNECT_TIMEOUT_S <= 5 and jobclient.response_timeout_s() <= 10
    monkeypatch.setenv("FARM_SUBMIT_TIMEOUT", "42")
    assert jobclient.response_timeout_s() == 42.0
    for bad in ("0", "-1", "nan", "inf", "soon"):
        monkeypatch.setenv("FARM_SUBMIT_TIMEOUT", bad)
        with pytest.raises(sm.SubmitError, match=f"FARM_SUBMIT_TIMEOUT='{bad}'"):
            jobclient.response_timeout_s()


@pytest.mark.timeout(120)
def test_cli_against_a_silent_dashboard_exits_2_with_one_line():
    with _silent_dashboard() as (addr, _):
        env = {**os.environ, "FARM_SUBMIT_TIMEOUT": "2"}
        t0 = time.monotonic()
        proc = subprocess.run([sys.executable, "-c", "import sys; from farm.cli import main; "
                               "sys.exit(main())", "jobs", "--address", addr],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=90)
        elapsed = time.monotonic() - t0
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and addr in lines[0] and "did not answer" in lines[0], proc.stderr
    assert elapsed < 45  # interpreter + imports on a loaded machine, then 2 s


def test_credential_like_env_names_are_refused(tmp_path, monkeypatch):
    """One rule (farm.secrets) decides what is a credential for submit and for the cube."""
    for name in ("AWS_SECRET_ACCESS_KEY", "FARM_API_KEY", "DB_PASSWORD", "MY_SESSION_TOKEN",
                 "GOOGLE_APPLICATION_CREDENTIALS", "RAY_AUTH_TOKEN"):
        monkeypatch.setenv(name, FAKE_SECRET)
        with pytest.raises(sm.SubmitError, match=f"refusing to send {name}"):
            sm.build_runtime_env(str(tmp_path), [name])
    monkeypatch.setenv("FARM_RUN_LABEL", "nightly")
    env = sm.build_runtime_env(str(tmp_path), ["FARM_RUN_LABEL"])
    assert env["env_vars"]["FARM_RUN_LABEL"] == "nightly"


def test_runtime_env_carries_no_credentials(monkeypatch, tmp_path):
    secrets = {
        "AWS_SECRET_ACCESS_KEY": FAKE_SECRET, "AWS_ACCESS_KEY_ID": FAKE_SECRET + "id",
        "AWS_SESSION_TOKEN": FAKE_SECRET + "tok", "GOOGLE_APPLICATION_CREDENTIALS": "/k.json",
    }
    for k, v in secrets.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("FARM_S3_BUCKET", "my-bucket")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    env = sm.build_runtime_env(str(tmp_path))
    assert env["env_vars"] == {"FARM_S3_BUCKET": "my-bucket", "AWS_REGION": "eu-west-1"}
    assert env["working_dir"] == str(tmp_path)
    for pattern in (".venv", "results", ".git", "benchmarks/.venv-radcad"):
        assert pattern in env["excludes"]
    dumped = json.dumps(env)
    assert not any(v in dumped for v in secrets.values())
    with pytest.raises(sm.SubmitError, match="credential"):
        sm.build_runtime_env(str(tmp_path), ["AWS_SECRET_ACCESS_KEY"])


def test_submit_sends_no_credentials(monkeypatch, tmp_path):
    """What reaches JobSubmissionClient.submit_job holds no credential value."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
    seen: dict = {}

    class FakeClient:
        def submit_job(self, **kwargs):
            seen.update(kwargs)
            return "raysubmit_fake"

    monkeypatch.setattr(sm, "_client", lambda address: FakeClient())
    out = tmp_path / "out.txt"
    with out.open("w") as fh:
        rc = sm.submit(["sweep=smoke"], address=None, follow=False,
                       working_dir=str(tmp_path), out=fh)
    assert rc == 0 and out.read_text().strip() == "raysubmit_fake"
    assert seen["entrypoint"] == "farm run runtime=cluster sweep=smoke"
    assert FAKE_SECRET not in json.dumps(seen)


def test_cluster_subcommands_of_the_cli():
    from farm import cli

    parser = cli.build_parser()
    a = parser.parse_args(["submit", "--address", "http://h:1", "--follow", "sweep=smoke",
                           "store.url=s3://b/x.zarr"])
    assert a.func is cli._cmd_submit and a.follow and a.address == "http://h:1"
    assert a.overrides == ["sweep=smoke", "store.url=s3://b/x.zarr"] and a.working_dir == "."
    assert parser.parse_args(["jobs"]).func is cli._cmd_jobs
    a = parser.parse_args(["logs", "raysubmit_1", "-f"])
    assert a.func is cli._cmd_logs and a.follow and a.job_id == "raysubmit_1"
    assert parser.parse_args(["stop", "raysubmit_1"]).func is cli._cmd_stop


@pytest.mark.skipif(not (ROOT / "farm" / "cli.py").exists(), reason="farm CLI not there yet")
def test_cli_submit_to_nothing_exits_2_fast(tmp_path):
    env = {**os.environ, "RAY_ADDRESS": f"http://127.0.0.1:{_free_port()}"}
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", "import sys; from farm.cli import main; "
                           "sys.exit(main())", "submit", "sweep=smoke"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert time.monotonic() - t0 < 30  # includes interpreter + imports on a loaded machine
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


# ---- cluster_runtime ------------------------------------------------------------------
def _node(i: int, ip: str, cpus: float, alive: bool = True) -> dict:
    return {"NodeID": f"n{i}", "Alive": alive, "NodeManagerAddress": ip,
            "Resources": {"CPU": cpus}}


def test_cluster_info():
    nodes = [_node(0, "10.0.0.1", 0), _node(1, "10.0.0.2", 16), _node(2, "10.0.0.3", 16),
             _node(3, "10.0.0.4", 16, alive=False)]
    info = cr.info_from(nodes, {"CPU": 32.0})
    assert (info.n_nodes, info.n_hosts, info.cpus) == (3, 3, 32.0)
    assert info.summary() == "using 3 nodes on 3 hosts, 32 CPUs"


def test_require_shared_store(tmp_path):
    local = str(tmp_path / "c.zarr")
    cr.require_shared_store("s3://bucket/x.zarr", 5)
    cr.require_shared_store(local, 1)
    cr.require_shared_store(local, 2, n_hosts=1)  # two nodes on one host share the disk
    cr.require_shared_store(local, 4, n_hosts=4, shared_fs=True)
    with pytest.raises(ValueError, match=r"s3://") as err:
        cr.require_shared_store(local, 4, n_hosts=3)
    assert isinstance(err.value, cr.LocalStoreOnClusterError)
    assert "\n" not in str(err.value) and "3 hosts" in str(err.value)
