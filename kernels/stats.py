"""Per-cell statistics over paths (docs/model.md section 7).

For every output: mean, std, se (std / sqrt(paths)), quantiles and es99; for every
probability its Wilson 95 % interval. A cell with a NaN or inf in any output gets
NaN probabilities (and NaN statistics where the bad values are), never a number read
off NaN: the farm marks such a cell failed.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .outputs import PATH_OUTPUTS, PROBABILITY_BASES, STATS
from .params import ModelParams

_QUANTILES = (0.05, 0.5, 0.95, 0.99)
WILSON_Z = 1.959963984540054  # two-sided 95 %


def summarise(v: jax.Array) -> jax.Array:
    """``(len(STATS),)`` statistics of one output over paths: mean, std, se, q05, q50, q95,
    q99, and es99, the mean of the largest 1 % (at least one path). Any NaN/inf in ``v``
    makes every statistic NaN."""
    n = v.shape[-1]
    finite = jnp.all(jnp.isfinite(v), axis=-1)
    s = jnp.sort(v, axis=-1)
    k = max(1, int(0.01 * n))
    pos = jnp.asarray(_QUANTILES, v.dtype) * (n - 1)
    lo = jnp.floor(pos).astype(jnp.int32)
    hi = jnp.minimum(lo + 1, n - 1)
    frac = pos - lo
    q = s[..., lo] * (1 - frac) + s[..., hi] * frac
    mean = jnp.mean(v, axis=-1)
    std = jnp.sqrt(jnp.mean((v - mean[..., None]) ** 2, axis=-1))
    se = std / jnp.sqrt(jnp.asarray(n, v.dtype))
    es = jnp.mean(s[..., n - k:], axis=-1)
    out = jnp.concatenate([mean[..., None], std[..., None], se[..., None], q, es[..., None]],
                          axis=-1)
    assert out.shape[-1] == len(STATS)
    return jnp.where(finite[..., None], out, jnp.nan)


def wilson(p_hat: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score 95 % interval of a binomial proportion ``p_hat`` over ``n`` trials.

    Plain NumPy in float64 on the kernel's output (not inside the jitted block), so the
    bounds of a cell are bit-identical whatever block computed it. NaN stays NaN.
    """
    p_hat = np.asarray(p_hat, dtype=np.float64)
    z2 = WILSON_Z**2
    centre = (p_hat + z2 / (2 * n)) / (1 + z2 / n)
    half = WILSON_Z / (1 + z2 / n) * np.sqrt(p_hat * (1 - p_hat) / n + z2 / (4 * n * n))
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def with_intervals(probs: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """Every probability of :data:`PROBABILITY_BASES` with its ``_lo`` / ``_hi`` bounds,
    in the order of :data:`kernels.outputs.PROBABILITIES`."""
    out = {}
    for name in PROBABILITY_BASES:
        p_hat = np.asarray(probs[name])
        lo, hi = wilson(p_hat, n)
        out[name] = p_hat
        out[f"{name}_lo"] = lo.astype(p_hat.dtype)
        out[f"{name}_hi"] = hi.astype(p_hat.dtype)
    return out


def cell_statistics(paths: dict[str, jax.Array], p: ModelParams):
    """``(stats, probs)``: stats[var] has shape ``(..., len(STATS))``; probs[name] ``(...)``
    for the names of :data:`PROBABILITY_BASES` (the Wilson bounds are added outside the
    jitted block by :func:`with_intervals`)."""
    stats = {name: summarise(paths[name]) for name in PATH_OUTPUTS}
    finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(paths[name]), axis=-1)
                                for name in PATH_OUTPUTS]), axis=0)
    dd = paths["drawdown_btc"]
    events = {
        "p_systemic": paths["systemic"],
        "p_fed_fired": paths["fed_fired"],
        "p_btc_crash": (dd >= p.crash_drawdown).astype(dd.dtype),
    }
    assert set(events) == set(PROBABILITY_BASES)
    probs = {name: jnp.where(finite, jnp.mean(hits, axis=-1), jnp.nan)
             for name, hits in events.items()}
    return stats, probs
