"""Market microstructure (DESIGN.md section 3.3): square-root impact and evaporating depth.

``dx = -Y 0.01 sign(Q) sqrt(|Q| / depth_eff)``: 4x the flow gives 2x the impact.
Depth evaporates with the step's forced flow, ``depth_eff = depth exp(-kappa |Q| /
depth0)``, floored at ``depth_floor`` of normal, and recovers at ``depth_recovery``
per step. Depth is carried as a share of normal depth.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .params import ModelParams


def liquidated_share(drawdown: jax.Array, threshold: jax.Array, spread) -> jax.Array:
    """Share of positions closed at a running drawdown when liquidation thresholds are
    spread uniformly over ``[threshold (1 - spread), threshold (1 + spread)]``.

    Continuous, non-decreasing in ``drawdown``; 0 at drawdown 0 for threshold > 0.
    """
    lo = threshold * (1.0 - spread)
    # a multiply by the (loop-invariant, hoisted) reciprocal: cheaper than a divide per round
    inv_width = 1.0 / jnp.maximum(2.0 * spread * threshold, 1e-12)
    return jnp.clip((drawdown - lo) * inv_width, 0.0, 1.0)


def normal_depth(p: ModelParams) -> jax.Array:
    """Normal 1 % depth per asset in dollars, ``(3,)``."""
    return jnp.stack([p.depth_btc, p.depth_alt, p.depth_eq])


def impact(q: jax.Array, depth: jax.Array, p: ModelParams,
           assets_first: bool = False) -> tuple[jax.Array, jax.Array]:
    """Log-price impact of net forced sales ``q`` ($, sell > 0) and the effective depth share.

    Assets are on the last axis of ``q`` and ``depth`` (``(..., 3)``), or on the first
    (``(3, ...)``, the kernel's paths-last layout) when ``assets_first``.
    """
    depth0 = normal_depth(p)
    if assets_first:
        depth0 = depth0.reshape((3,) + (1,) * (q.ndim - 1))
    aq = jnp.abs(q)
    d_eff = jnp.maximum(depth * jnp.exp(-p.kappa * aq / depth0), p.depth_floor)
    return -p.impact_y * 0.01 * jnp.sign(q) * jnp.sqrt(aq / (depth0 * d_eff)), d_eff


def recover_depth(d_eff: jax.Array, p: ModelParams) -> jax.Array:
    """Depth share at the start of the next step."""
    return d_eff + p.depth_recovery * (1.0 - d_eff)
