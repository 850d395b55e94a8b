"""Market microstructure (docs/model.md section 3): square-root impact, evaporating depth.

The price impact is the square-root law applied to the market's *memory* of net
forced flow ``M`` (sell > 0, dollars): ``dx = -Y 0.01 sign(M) sqrt(|M| / depth_eff)``,
so 4x the flow gives 2x the impact, and a flow split over steps moves the price as
much as the same flow at once (a metaorder). The memory has a permanent part (share
``perm_share`` of each step's flow, kept all day) and a transient part that decays by
``resilience`` per 15 minutes, so a crash partly rebounds. Depth evaporates with the
step's forced flow ``q``: ``depth_eff = depth exp(-kappa |q| / depth0)``, floored at
``depth_floor`` of normal, and recovers ``depth_recovery`` of the gap per 15 minutes
(evaporation by the step's flow is already independent of the step length). Depth
is carried as a share of normal depth.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .params import ModelParams


def liquidated_share(drawdown: jax.Array, threshold: jax.Array, spread) -> jax.Array:
    """Share of positions closed at a running drawdown when their thresholds are spread
    uniformly over ``[threshold (1 - spread), threshold (1 + spread)]``.

    Continuous, non-decreasing in ``drawdown``; 0 at drawdown 0 for threshold > 0; a
    step at the threshold when ``spread`` is 0.
    """
    lo = threshold * (1.0 - spread)
    width = 2.0 * spread * threshold
    safe = jnp.where(width > 0, width, 1.0)
    ramp = jnp.clip((drawdown - lo) / safe, 0.0, 1.0)
    return jnp.where(width > 0, ramp, (drawdown >= threshold).astype(ramp.dtype))


def normal_depth(p: ModelParams) -> jax.Array:
    """Normal 1 % depth per asset in dollars, ``(3,)``."""
    return jnp.stack([p.depth_btc, p.depth_alt, p.depth_eq])


def impact(q: jax.Array, depth: jax.Array, p: ModelParams, assets_first: bool = False,
           memory: jax.Array | float = 0.0) -> tuple[jax.Array, jax.Array]:
    """Log-price impact of this step's net forced sales ``q`` ($, sell > 0) on top of the
    remembered flow ``memory`` ($), and the effective depth share.

    Assets are on the last axis of ``q`` and ``depth`` (``(..., 3)``), or on the first
    (``(3, ...)``, the kernel's paths-last layout) when ``assets_first``.
    """
    depth0 = normal_depth(p)
    if assets_first:
        depth0 = depth0.reshape((3,) + (1,) * (q.ndim - 1))
    d_eff = jnp.maximum(depth * jnp.exp(-p.kappa * jnp.abs(q) / depth0), p.depth_floor)
    m = memory + q
    return -p.impact_y * 0.01 * jnp.sign(m) * jnp.sqrt(jnp.abs(m) / (depth0 * d_eff)), d_eff


REFERENCE_STEP_HOURS = 0.25
"""``resilience`` and ``depth_recovery`` are stated per 15 minutes and converted to the
step length, so that halving ``step_hours`` leaves the dynamics unchanged."""


def per_step(p: ModelParams) -> tuple[jax.Array, jax.Array]:
    """``(r, g)``: survival of transient impact and share of the depth gap recovered, per
    step of ``step_hours`` (``resilience ** (step_hours / 0.25)``, and likewise for the
    share of the gap *not* recovered)."""
    k = p.step_hours / REFERENCE_STEP_HOURS
    return p.resilience**k, 1.0 - (1.0 - p.depth_recovery) ** k


def recover_depth(d_eff: jax.Array, p: ModelParams) -> jax.Array:
    """Depth share at the start of the next step."""
    return d_eff + per_step(p)[1] * (1.0 - d_eff)
