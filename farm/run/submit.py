"""``farm submit`` / ``farm jobs`` / ``farm logs`` / ``farm stop``: the Ray Jobs API.

``farm submit [overrides]`` ships the working directory to a running Ray cluster as
the job's runtime environment and runs ``farm run runtime=cluster [overrides]`` there
(the driver on the head node, blocks on the workers; another ``runtime=`` is refused).
The address is the dashboard's HTTP address (``http://127.0.0.1:8265`` while ``ray
dashboard cluster.yaml`` forwards it); it defaults to ``$RAY_ADDRESS``, else that local
URL. On a cluster with token authentication the client sends ``$RAY_AUTH_TOKEN`` (or the
token file Ray reads, ``~/.ray/auth_token`` by default).

No credentials travel with a job: its ``env_vars`` hold only the values of a short
list of non-secret settings (bucket name, endpoint, region) and of names asked for
that do not look like credentials (:func:`farm.secrets.is_secret_name`); the cluster's
nodes get their credentials from their own environment (instance profile, service
account).

Every failure to reach the cluster, or a refusal by it, is a :class:`SubmitError`
with a one-line message (the CLI maps it to exit status 2). Connections and answers
time out after a few seconds (:mod:`farm.run.jobclient`, ``$FARM_SUBMIT_TIMEOUT``);
only the upload of the working directory and a followed job's log stream may take long.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
from collections.abc import Sequence
from typing import Any, TextIO

from farm.errors import SubmitError
from farm.run.jobclient import DEFAULT_ADDRESS, resolve_address, timeout_client_class
from farm.run.jobclient import client as _client
from farm.secrets import is_secret_name

__all__ = [
    "DEFAULT_ADDRESS",
    "PASSED_ENV",
    "RUNTIME_EXCLUDES",
    "SubmitError",
    "build_entrypoint",
    "build_runtime_env",
    "job_overrides",
    "list_jobs",
    "logs",
    "resolve_address",
    "stop",
    "submit",
    "timeout_client_class",
]

log = logging.getLogger(__name__)

TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")

# Paths of the working directory that never travel with a job (gitignore syntax).
RUNTIME_EXCLUDES = [
    ".venv",
    ".venv/**",
    "results",
    "results/**",
    ".git",
    ".git/**",
    "benchmarks/.venv-radcad",
    "benchmarks/.venv-radcad/**",
    "**/__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
    "*.zarr",
]

# Non-secret settings whose values are copied into the job's environment when set
# here: the conf/ files read them (conf/store/s3.yaml) and s3fs/botocore use them.
PASSED_ENV = (
    "FARM_S3_BUCKET",
    "FARM_S3_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
)


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


CLUSTER_RUNTIME = "runtime=cluster"


def job_overrides(overrides: Sequence[str]) -> list[str]:
    """The overrides of the job's ``farm run``: ``runtime=cluster`` first (the job uses the
    cluster it runs on), unless the user chose it already. Another runtime (``runtime=local``
    would start a second, separate Ray on the head node) is a :class:`SubmitError`."""
    for item in overrides:
        key, _, value = item.lstrip("+~").partition("=")
        if key.strip() != "runtime":
            continue
        if value.strip() != "cluster" or item.startswith("~"):
            raise SubmitError(
                f"{item} is not allowed with farm submit: a job always runs with "
                f"{CLUSTER_RUNTIME} (added for you), on the cluster's nodes; drop it")
        return list(overrides)
    return [CLUSTER_RUNTIME, *overrides]


def build_entrypoint(overrides: Sequence[str]) -> str:
    """The job's shell command: ``farm run`` with each override shell-quoted."""
    return shlex.join(["farm", "run", *overrides])


def build_runtime_env(working_dir: str = ".", env_names: Sequence[str] = ()) -> dict[str, Any]:
    """``{"working_dir", "excludes", "env_vars"}`` for the job.

    ``env_vars`` copies the values of :data:`PASSED_ENV` and ``env_names`` that are set
    here; a name that looks like a credential raises :class:`SubmitError`.
    """
    path = os.path.abspath(os.path.expanduser(working_dir))
    if not os.path.isdir(path):
        raise SubmitError(f"working directory {working_dir!r} is not a directory")
    for name in env_names:
        if is_secret_name(name):
            raise SubmitError(
                f"refusing to send {name} to the cluster: it looks like a credential; "
                "give the cluster's nodes their own credentials (instance profile)"
            )
    env_vars = {n: os.environ[n] for n in (*PASSED_ENV, *env_names) if os.environ.get(n)}
    return {"working_dir": path, "excludes": list(RUNTIME_EXCLUDES), "env_vars": env_vars}


def _status_name(status: Any) -> str:
    return str(getattr(status, "value", status))


async def _tail(client: Any, job_id: str, out: TextIO) -> None:
    async for chunk in client.tail_job_logs(job_id):
        out.write(chunk)
        out.flush()


def _follow(client: Any, job_id: str, out: TextIO, err: TextIO | None = None) -> int:
    """Stream the job's logs until it ends; 0 if it SUCCEEDED, else 1."""
    try:
        asyncio.run(_tail(client, job_id, out))
    except KeyboardInterrupt:
        log.warning("stopped following job %s (it keeps running; `farm stop %s`)",
                    job_id, job_id)
        return 1
    except Exception as exc:  # the stream broke: fall back to the final status
        log.warning("log stream of job %s ended: %s", job_id, _one_line(exc))
    try:
        status = _status_name(client.get_job_status(job_id))
    except Exception as exc:
        raise SubmitError(f"cannot read the status of job {job_id}: {_one_line(exc)}") from None
    (err or out).write(f"job {job_id}: {status}\n")
    return 0 if status == "SUCCEEDED" else 1


def submit(
    overrides: list[str],
    *,
    address: str | None,
    follow: bool,
    working_dir: str = ".",
    env_names: Sequence[str] = (),
    out: TextIO,
    err: TextIO | None = None,
) -> int:
    """Submit ``farm run runtime=cluster <overrides>`` as a Ray job (:func:`job_overrides`);
    prints the job id on stdout.

    Returns 0 once submitted (or, with ``follow``, when the job SUCCEEDED), 1 when a
    followed job ended otherwise. Raises :class:`SubmitError` if the cluster is
    unreachable or refuses the job.
    """
    runtime_env = build_runtime_env(working_dir, env_names)
    entrypoint = build_entrypoint(job_overrides(overrides))
    client = _client(address)
    try:
        job_id = client.submit_job(entrypoint=entrypoint, runtime_env=runtime_env)
    except Exception as exc:
        raise SubmitError(f"job submission refused: {_one_line(exc)}") from None
    print(job_id, file=out, flush=True)
    log.info("submitted %s as job %s", entrypoint, job_id)
    if not follow:
        return 0
    return _follow(client, job_id, out, err)


def list_jobs(address: str | None, *, out: TextIO) -> int:
    """One line per job: id, status, start time, entrypoint."""
    client = _client(address)
    try:
        jobs = client.list_jobs()
    except Exception as exc:
        raise SubmitError(f"cannot list jobs: {_one_line(exc)}") from None
    for job in sorted(jobs, key=lambda j: j.start_time or 0):
        print(
            f"{job.submission_id or job.job_id}\t{_status_name(job.status)}\t"
            f"{job.entrypoint}",
            file=out,
        )
    return 0


def logs(job_id: str, address: str | None, follow: bool, *, out: TextIO,
         err: TextIO | None = None) -> int:
    """Print a job's logs; with ``follow`` stream them and return the job's outcome."""
    client = _client(address)
    if follow:
        return _follow(client, job_id, out, err)
    try:
        out.write(client.get_job_logs(job_id))
    except Exception as exc:
        raise SubmitError(f"cannot read the logs of job {job_id}: {_one_line(exc)}") from None
    out.flush()
    return 0


def stop(job_id: str, address: str | None, *, out: TextIO) -> int:
    """Ask the cluster to stop a job; 0 if a stop was requested, 1 if it had ended."""
    client = _client(address)
    try:
        stopped = client.stop_job(job_id)
    except Exception as exc:
        raise SubmitError(f"cannot stop job {job_id}: {_one_line(exc)}") from None
    print(f"job {job_id}: {'stop requested' if stopped else 'already ended'}", file=out)
    return 0 if stopped else 1
