"""What the farm treats as a secret: one definition, used wherever a value could leak.

A *credential-like name* (:data:`SECRET_NAME`, case-insensitive) contains one of
SECRET, TOKEN, PASSW (PASSWORD, PASSWD), PASSPHRASE, CRED (CREDENTIAL, ...), PRIVATE,
SESSION, AUTH or KEY (ACCESS_KEY, API_KEY, s3fs's ``key``, ...): the three rules the
farm had before in one (their "pass" narrowed, so that e.g. ``*_PASSENV`` is no secret).
It errs on the side of hiding:

- :func:`redact_secrets` replaces, wherever they occur in a string, dict or list, the
  values (at least :data:`MIN_SECRET_LEN` characters) of environment variables with such
  names and any ``extra`` strings, e.g. :func:`option_secrets` of a store's
  ``storage_options`` (the cube's attrs, failure messages and config text pass here);
- ``farm submit`` refuses to send an environment variable with such a name to the
  cluster (:func:`is_secret_name`).

Standard library only: cheap to import anywhere (the CLI, the store, workers).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "MIN_SECRET_LEN",
    "REDACTED",
    "SECRET_NAME",
    "is_secret_name",
    "option_secrets",
    "redact_secrets",
    "secret_values",
]

SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSW|PASSPHRASE|CRED|PRIVATE|SESSION|AUTH|KEY",
                         re.IGNORECASE)
MIN_SECRET_LEN = 6  # shorter values ("1", "true", "us") are not worth hiding and would mangle text
REDACTED = "***"


def is_secret_name(name: str) -> bool:
    """True when ``name`` (an environment variable or option name) looks like a credential."""
    return SECRET_NAME.search(str(name)) is not None


def option_secrets(options: Mapping[str, Any] | None) -> list[str]:
    """The string values of credential-like keys of ``options`` (e.g. ``storage_options``)."""
    return [v for k, v in (options or {}).items() if isinstance(v, str) and is_secret_name(k)]


def secret_values(extra: Iterable[Any] = (), environ: Mapping[str, str] | None = None) -> list[str]:
    """The values to hide, longest first: credential-like environment variables and ``extra``."""
    env = os.environ if environ is None else environ
    values = {v for k, v in env.items() if is_secret_name(k) and len(v) >= MIN_SECRET_LEN}
    values.update(str(v) for v in extra if v is not None and len(str(v)) >= MIN_SECRET_LEN)
    return sorted(values, key=len, reverse=True)


def redact_secrets(obj: Any, extra: Iterable[Any] = ()) -> Any:
    """``obj`` with every occurrence of a secret (:func:`secret_values`) replaced by ``***``,
    in strings and, recursively, in dict keys and values and list/tuple items (tuples
    become lists); other values are returned unchanged."""
    secrets = secret_values(extra)
    if not secrets:
        return obj

    def _walk(x: Any) -> Any:
        if isinstance(x, str):
            for s in secrets:
                if s in x:
                    x = x.replace(s, REDACTED)
            return x
        if isinstance(x, dict):
            return {_walk(k): _walk(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [_walk(v) for v in x]
        return x

    return _walk(obj)
