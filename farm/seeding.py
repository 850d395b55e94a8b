"""PRNG keys for blocks of cells (docs/model.md section 2: common random numbers).

- ``common`` (default, common random numbers): every block gets the same key,
  ``jax.random.key(root_seed)``; the kernel folds in the path index, so path
  ``i`` sees the same shocks in every cell and surfaces are smooth.
- ``independent``: cell ``c`` gets ``fold_in(fold_in(root, h_hi), h_lo)`` where
  ``(h_hi, h_lo)`` are two 32-bit words of a BLAKE2b hash of the cell's
  parameter values (its design-table row as little-endian float64, ``-0.0``
  read as ``0.0``). It depends only on the values, never on the block, the
  worker, the chunk or the cell's position.

Keys are never split by block, worker or chunk, so the cube is bit-identical
whatever the number of workers, the block size, interruption and resume.
"""

from __future__ import annotations

import functools
import hashlib
from typing import TYPE_CHECKING, Any

import numpy as np

from farm.blocks import Block

if TYPE_CHECKING:
    from farm.design import Design

__all__ = ["block_hash_words", "block_key", "cell_hash_words", "cell_keys", "key_from_words",
           "root_key"]


def root_key(seed: int) -> Any:
    """``jax.random.key(seed)``: the key of common random numbers (0 <= seed < 2**32)."""
    import jax

    seed = int(seed)
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed={seed} is out of range; allowed: [0, {2**32 - 1}]")
    return jax.random.key(seed)


def cell_hash_words(design: Design, cells: np.ndarray) -> np.ndarray:
    """(n, 2) uint32: a stable 64-bit hash of each cell's parameter values."""
    idx = np.asarray(cells, dtype=np.int64).ravel()
    rows = np.ascontiguousarray(design.table[idx], dtype="<f8") + 0.0  # -0.0 -> 0.0
    out = np.empty((idx.size, 2), dtype=np.uint32)
    for i, row in enumerate(rows):
        digest = hashlib.blake2b(row.tobytes(), digest_size=8).digest()
        out[i] = np.frombuffer(digest, dtype="<u4")
    return out


@functools.cache
def _fold_words():
    """jit(vmap(fold_in twice)): compiled once per block size."""
    import jax

    def one(root, w):
        return jax.random.fold_in(jax.random.fold_in(root, w[0]), w[1])

    return jax.jit(jax.vmap(one, in_axes=(None, 0)))


def cell_keys(seed: int, design: Design, cells: np.ndarray) -> Any:
    """(n,) keys of independent seeding for ``cells`` (flat cell indices)."""
    return key_from_words(seed, cell_hash_words(design, cells))


def block_hash_words(seeding: str, design: Design, block: Block | np.ndarray) -> np.ndarray | None:
    """What a worker needs besides the root seed to make the block's key, without JAX:
    ``None`` for ``common``, the (n, 2) uint32 :func:`cell_hash_words` for ``independent``.
    The driver sends these; the worker calls :func:`key_from_words`."""
    if seeding not in ("common", "independent"):
        raise ValueError(f"sweep.seeding={seeding!r} is not allowed; "
                         "allowed: common | independent")
    if seeding == "common":
        return None
    cells = block.cells if isinstance(block, Block) else np.asarray(block)
    return cell_hash_words(design, cells)


def key_from_words(seed: int, words: np.ndarray | None) -> Any:
    """The block's key from :func:`block_hash_words`: the root key, or one key per cell."""
    if words is None:
        return root_key(seed)
    return _fold_words()(root_key(seed), np.asarray(words, dtype=np.uint32))


def block_key(seed: int, seeding: str, design: Design, block: Block | np.ndarray) -> Any:
    """The ``key`` argument of ``kernels.simulate_block`` for ``block``.

    ``common``: one key (the same for every block). ``independent``: ``(n,)``
    keys, one per cell of ``block`` (a :class:`Block` or an array of flat cell
    indices, e.g. a block's cells padded to the static block size).
    """
    return key_from_words(seed, block_hash_words(seeding, design, block))
