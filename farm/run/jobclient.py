"""A Ray Jobs API client that never waits long for a dashboard that does not answer.

Every request of ``farm submit`` / ``jobs`` / ``logs`` / ``stop`` has a connect timeout
(:data:`CONNECT_TIMEOUT_S`) and a response timeout: a few seconds
(:data:`RESPONSE_TIMEOUT_S`, or ``$FARM_SUBMIT_TIMEOUT`` seconds), so a server that
accepts connections but never answers is a one-line :class:`farm.errors.SubmitError`
naming the address. Only the upload of the working directory may take long
(:data:`UPLOAD_TIMEOUT_S`: the whole body is sent within the socket's timeout), and
following a job's logs (a websocket, :mod:`farm.run.submit`) waits as long as the job
runs.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from farm.errors import SubmitError

__all__ = ["CONNECT_TIMEOUT_S", "DEFAULT_ADDRESS", "RESPONSE_TIMEOUT_S", "TIMEOUT_ENV",
           "UPLOAD_TIMEOUT_S", "client", "resolve_address", "response_timeout_s",
           "timeout_client_class"]

DEFAULT_ADDRESS = "http://127.0.0.1:8265"
CONNECT_TIMEOUT_S = 3.0  # seconds to open a TCP connection to the dashboard
RESPONSE_TIMEOUT_S = 10.0  # seconds for the first byte of an answer (default)
TIMEOUT_ENV = "FARM_SUBMIT_TIMEOUT"  # overrides RESPONSE_TIMEOUT_S (seconds)
UPLOAD_TIMEOUT_S = 600.0  # seconds to send the working directory and get the answer


def resolve_address(address: str | None) -> str:
    """The dashboard URL: ``address``, else ``$RAY_ADDRESS``, else :data:`DEFAULT_ADDRESS`.

    A bare ``host:port`` becomes ``http://host:port``. ``ray://`` and GCS addresses
    (port 6379, ``auto``) are refused: the Jobs API lives on the dashboard port.
    """
    addr = (address or os.environ.get("RAY_ADDRESS") or DEFAULT_ADDRESS).strip().rstrip("/")
    if addr == "auto":
        raise SubmitError(
            "address 'auto' is a Ray bootstrap address; farm submit needs the dashboard URL, "
            f"e.g. {DEFAULT_ADDRESS} (run `ray dashboard cluster.yaml` to forward it)"
        )
    if "://" not in addr:
        addr = "http://" + addr
    parts = urlsplit(addr)
    if parts.scheme not in ("http", "https"):
        raise SubmitError(
            f"address {addr!r} is not an http(s) URL; farm submit talks to the Ray dashboard, "
            f"e.g. {DEFAULT_ADDRESS}"
        )
    if not parts.hostname:
        raise SubmitError(f"address {addr!r} has no host")
    return addr


def response_timeout_s() -> float:
    """Seconds to wait for an answer: ``$FARM_SUBMIT_TIMEOUT``, else the default."""
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    if not text:
        return RESPONSE_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise SubmitError(f"{TIMEOUT_ENV}={text!r} is not allowed: a number of seconds > 0 "
                          f"(default {RESPONSE_TIMEOUT_S:g})")
    return value


def _probe(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast (one line) when nothing accepts connections at the dashboard address."""
    parts = urlsplit(address)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            pass
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise SubmitError(
            f"cannot reach the Ray dashboard at {address} ({reason}); is the cluster up and "
            "`ray dashboard cluster.yaml` forwarding its port? (set --address or RAY_ADDRESS)"
        ) from None


@contextlib.contextmanager
def _without_ray_address_env() -> Iterator[None]:
    """Ray's client prefers $RAY_ADDRESS over its argument; make the argument win."""
    saved = {k: os.environ.pop(k) for k in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS")
             if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


@functools.cache
def timeout_client_class() -> type:
    """Ray's ``JobSubmissionClient`` with connect/response timeouts on every HTTP request.

    Ray's public API has no timeout (ray 2.60: ``JobSubmissionClient(address, cookies,
    metadata, headers, verify)``; every request is a bare ``requests.request`` in the
    private ``SubmissionClient._do_request(method, endpoint, **kwargs)``, which passes
    extra keyword arguments on to ``requests``). This override is the farm's one use of
    that private method; tests/farm/test_cluster_config.py
    (``test_ray_private_do_request_is_still_there``, ``test_silent_dashboard_*``)
    fails by name if a ray upgrade removes or changes it.
    """
    import requests
    from ray.job_submission import JobSubmissionClient

    class TimeoutJobSubmissionClient(JobSubmissionClient):
        def _do_request(self, method: str, endpoint: str, **kwargs: Any) -> Any:
            upload = method == "PUT" and endpoint.startswith("/api/packages/")
            wait = UPLOAD_TIMEOUT_S if upload else response_timeout_s()
            kwargs.setdefault("timeout", (CONNECT_TIMEOUT_S, wait))
            try:
                return super()._do_request(method, endpoint, **kwargs)
            except requests.exceptions.Timeout:
                raise SubmitError(
                    f"the Ray dashboard at {self._address} did not answer {method} "
                    f"{endpoint} within {wait:g} s (connection accepted; set "
                    f"{TIMEOUT_ENV}=SECONDS to wait longer)") from None

    return TimeoutJobSubmissionClient


def client(address: str | None) -> Any:
    """A ``JobSubmissionClient`` for ``address`` with timeouts on every request (its
    constructor already asks the dashboard for its version)."""
    url = resolve_address(address)
    _probe(url)
    client_class = timeout_client_class()
    try:
        with _without_ray_address_env():
            return client_class(url)
    except SubmitError:
        raise
    except Exception as exc:
        text = " ".join(str(exc).split())
        raise SubmitError(f"cannot use the Ray Jobs API at {url}: {text}") from None
