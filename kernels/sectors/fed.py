"""The Fed put: shields equities and banks, never crypto.

Past ``fed_trigger`` the Fed absorbs a share of equity forced flow and forestalls
the same share of bank fire sales. Within a step the share ramps from 0 to
``fed_put`` as the equity drawdown goes from the trigger to trigger + ``fed_ramp``
(a continuous rule; within a step the share never falls back, so the cascade
cannot oscillate around the trigger); once the
trigger has been reached at the end of a step the Fed stays in at full
strength for the rest of the day. It never buys crypto: crypto flows do not pass
through here.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..params import ModelParams


def armed(p: ModelParams, dd_eq: jax.Array, fed_on: jax.Array) -> jax.Array:
    """1.0 once the equity drawdown has reached the trigger (sticky for the day)."""
    return jnp.maximum(fed_on, (dd_eq >= p.fed_trigger).astype(dd_eq.dtype))


def share(p: ModelParams, dd_eq: jax.Array, fed_on: jax.Array) -> jax.Array:
    """Share of equity forced flow (and of bank fire sales) the Fed absorbs, in [0, fed_put]."""
    ramp = jnp.clip((dd_eq - p.fed_trigger) / p.fed_ramp, 0.0, 1.0)
    return p.fed_put * jnp.maximum(fed_on, ramp)


def net_equity_flow(gross: jax.Array, fed_share: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Equity flow that reaches the market and the part the Fed bought ($)."""
    return (1.0 - fed_share) * gross, fed_share * gross
