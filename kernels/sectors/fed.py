"""The Fed put: shields equities and banks, never crypto.

Past ``fed_trigger`` the Fed buys a share of the funds' equity fire sales and
forestalls the same share of bank fire sales (equities sold to restore leverage or
to pay a run, and the other assets a run would have dumped at a discount). The
share is applied once: a bank sale the Fed forestalled never reaches the market and
is not counted as bought. Within a step the share ramps from 0 to ``fed_put`` as the
equity drawdown goes from the trigger to trigger + ``fed_ramp`` and never falls back
(so the cascade cannot oscillate around the trigger); once the trigger has been
reached at the end of a step the Fed stays in at full strength for the day. Crypto
flows never pass through here.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..params import ModelParams


def armed(p: ModelParams, dd_eq: jax.Array, fed_on: jax.Array) -> jax.Array:
    """1.0 once the equity drawdown has reached the trigger (sticky for the day)."""
    return jnp.maximum(fed_on, (dd_eq >= p.fed_trigger).astype(dd_eq.dtype))


def share(p: ModelParams, dd_eq: jax.Array, fed_on: jax.Array) -> jax.Array:
    """Share of fund equity fire sales the Fed buys (and of bank fire sales it forestalls)."""
    ramp = jnp.clip((dd_eq - p.fed_trigger) / p.fed_ramp, 0.0, 1.0)
    return p.fed_put * jnp.maximum(fed_on, ramp)
