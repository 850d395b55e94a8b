"""The kernel's code and the numerics settings: what besides the configuration decides a
cube's bits. Light (no Hydra, no OmegaConf): the store and the workers read it too.

:func:`kernel_fingerprint` digests the kernel's code, not its comments or docstrings, nor
the NumPy reference (``kernels/reference.py``): editing a comment does not block a
resume; changing an equation does.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import os
from pathlib import Path

__all__ = ["NOT_IN_FINGERPRINT", "NUMERICS_ENV", "kernel_fingerprint", "numerics_settings"]

NOT_IN_FINGERPRINT = ("reference.py", "cfunits.py", "compilecache.py")
"""Kernel files that never change a cube's numbers (the NumPy reference implementation,
the cube's unit spellings, the persistent compilation cache)."""
NUMERICS_ENV = ("KERNELS_PATH_CHUNK", "KERNELS_COMPACT", "JAX_ENABLE_X64",
                "JAX_DEFAULT_PRNG_IMPL")
"""Environment settings that can change the bits of a cube (recorded and hashed)."""


def _code_only(source: str) -> str:
    """The source's abstract syntax tree without docstrings, as text: comments, docstrings
    and formatting do not count, code does."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(getattr(body[0], "value", None), ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


@functools.cache
def kernel_fingerprint() -> str:
    """sha256 (hex, 16 chars) of the kernel's code (every module of ``kernels/`` but the
    NumPy reference), ignoring comments and docstrings."""
    import kernels

    root = Path(kernels.__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        if path.name in NOT_IN_FINGERPRINT:
            continue
        h.update(str(path.relative_to(root)).encode())
        h.update(_code_only(path.read_text()).encode())
    return h.hexdigest()[:16]


def numerics_settings() -> dict[str, str]:
    """The settings besides the configuration that can change a cube's bits: the JAX backend
    the workers will use (the default of this process) and :data:`NUMERICS_ENV`."""
    out = {k: os.environ[k] for k in NUMERICS_ENV if os.environ.get(k)}
    out["jax_platforms"] = os.environ.get("JAX_PLATFORMS", "") or "default"
    return out
