"""The Fed put: shields equities and banks, never crypto.

Once the equity drawdown has reached ``fed_trigger`` (observed at the end of a
step, so it acts from the next step on) the Fed absorbs the share ``fed_put``
of equity forced flow and forestalls the same share of bank fire sales. It
never buys crypto: crypto flows do not pass through here.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..params import ModelParams


def armed(p: ModelParams, dd_eq: jax.Array, fed_on: jax.Array) -> jax.Array:
    """1.0 once the equity drawdown has reached the trigger (sticky for the day)."""
    return jnp.maximum(fed_on, (dd_eq >= p.fed_trigger).astype(dd_eq.dtype))


def net_equity_flow(
    p: ModelParams, gross: jax.Array, fed_on: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Equity flow that reaches the market and the part the Fed bought ($)."""
    share = p.fed_put * fed_on
    return (1.0 - share) * gross, share * gross
