"""PRNG keys of cells: the kernel owns how a cell's draws are derived from the root seed.

- ``common`` (default, common random numbers): every cell gets the key
  ``jax.random.key(root_seed)``; the kernel folds in the path index, so path ``i``
  sees the same shocks in every cell and surfaces are smooth.
- ``independent``: a cell gets ``fold_in(fold_in(root, h_hi), h_lo)`` where ``(h_hi,
  h_lo)`` are two 32-bit words of a BLAKE2b hash of the cell's parameter values (its
  design-table row as little-endian float64, ``-0.0`` read as ``0.0``). It depends
  only on the values, never on the block, the worker, the chunk or the cell's position.

Keys are never split by block, worker or chunk, so a cube is bit-identical whatever the
number of workers, the block size, interruption and resume. The hash words need only
NumPy (the farm's driver computes them without JAX); the keys need JAX.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any

import numpy as np

__all__ = ["SEEDINGS", "cell_hash_words", "cell_keys", "key_from_words", "replicate_seed",
           "root_key", "seeding_words"]

SEEDINGS = ("common", "independent")
SEED_MAX = 2**32 - 1  # jax.random.key keeps only 32 bits of a seed without x64


def root_key(seed: int) -> Any:
    """``jax.random.key(seed)``: the key of common random numbers (0 <= seed < 2**32)."""
    import jax

    seed = int(seed)
    if not 0 <= seed <= SEED_MAX:
        raise ValueError(f"seed={seed} is out of range; allowed: [0, {SEED_MAX}]")
    return jax.random.key(seed)


def replicate_seed(seed: int, replicate: int) -> int:
    """The root seed of replicate ``replicate`` of a cell (an adaptive sweep's extra paths
    at a point it has run before): ``seed`` itself for replicate 0, else 32 bits of a
    BLAKE2b hash of ``(seed, replicate)``. Each replicate is a stream of its own, with
    common (or independent) seeding within it, so a point's pooled paths are
    independent draws; it depends on nothing but the two numbers."""
    seed, replicate = int(seed), int(replicate)
    if replicate < 0:
        raise ValueError(f"replicate={replicate} is out of range; allowed: >= 0")
    if replicate == 0:
        return seed
    digest = hashlib.blake2b(f"replicate:{seed}:{replicate}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little")


def cell_hash_words(rows: np.ndarray) -> np.ndarray:
    """(n, 2) uint32: a stable 64-bit hash of each row of parameter values ``(n, d)``."""
    rows = np.ascontiguousarray(np.atleast_2d(np.asarray(rows, dtype=float)), dtype="<f8")
    rows = rows + 0.0  # -0.0 -> 0.0
    out = np.empty((rows.shape[0], 2), dtype=np.uint32)
    for i, row in enumerate(rows):
        digest = hashlib.blake2b(row.tobytes(), digest_size=8).digest()
        out[i] = np.frombuffer(digest, dtype="<u4")
    return out


def seeding_words(seeding: str, rows: np.ndarray) -> np.ndarray | None:
    """What a block needs besides the root seed to make its key: ``None`` for ``common``,
    the :func:`cell_hash_words` of its cells' rows for ``independent``."""
    if seeding not in SEEDINGS:
        raise ValueError(f"seeding={seeding!r} is not allowed; allowed: {' | '.join(SEEDINGS)}")
    return None if seeding == "common" else cell_hash_words(rows)


@functools.cache
def _fold_words():
    """jit(vmap(fold_in twice)): compiled once per block size."""
    import jax

    def one(root, w):
        return jax.random.fold_in(jax.random.fold_in(root, w[0]), w[1])

    return jax.jit(jax.vmap(one, in_axes=(None, 0)))


def key_from_words(seed: int, words: np.ndarray | None) -> Any:
    """The ``key`` of ``kernels.simulate_block``: the root key (``words`` None), or one key
    per cell from :func:`cell_hash_words`."""
    if words is None:
        return root_key(seed)
    return _fold_words()(root_key(seed), np.asarray(words, dtype=np.uint32))


def cell_keys(seed: int, rows: np.ndarray) -> Any:
    """(n,) keys of independent seeding for cells with parameter values ``rows`` (n, d)."""
    return key_from_words(seed, cell_hash_words(rows))
