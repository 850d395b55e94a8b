"""The within-step fixed-point solver, with the active set compacted as paths converge.

``solve`` iterates ``x <- F(x)`` per path (paths on the last axis) to the least fixed
point; the map ``F`` comes from the caller (:func:`kernels.cascade.step`), so this module
knows nothing of sectors. Each path runs its own sequence of rounds and stops on its own
test, so its numbers never depend on the other paths it is computed with.

**Active-set compaction.** Most paths converge in one or two rounds; a few near a
tipping point need tens. A masked loop over all paths pays full width for every round
the slowest path needs. Here the loop runs at full width only while more than
``widths[0]`` paths are active; then the still-active paths (their iterate, their part
of the caller's context) are gathered into a buffer of ``widths[0]`` lanes and iterated
there (and, with more levels, into ``widths[1]`` lanes and so on); the narrow result is
scattered back.
A path's rounds are the same arithmetic on the same numbers in whichever lane it sits,
so compaction changes what is executed, not what is computed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

OMEGA_START, OMEGA_MAX, MAX_JUMP = 16.0, 1024.0, 0.1
"""Over-relaxation cap of an accelerated round: 16 plain steps at first, doubled after
every accepted jump (a slow drift past the ghost of a vanished fixed point needs
hundreds), quartered after a rejected one; and never more than ``MAX_JUMP`` (0.1) log
units beyond the plain step, so a jump cannot leave the range where prices are finite."""

COMPACT_RATIO, COMPACT_MIN, COMPACT_LEVELS = 8, 8, 1
"""Compaction widths: each level has 1/8 of the lanes of the one before, at least 8
lanes, one level (a 512-path chunk runs at 512 lanes, then at 64). Measured on 16 cells
x 4,096 paths (float32, one core): one level 2.35e6 path-steps/s with a 6.4 s compile,
two levels (512, 64, 8) 2.47e6 with 10.6 s, none 1.0e6 with 4.1 s; each level
compiles the cascade body once more, and every worker pays the compile."""

Map = Callable[[Any, jax.Array, jax.Array], tuple[jax.Array, jax.Array, Any]]
"""``F(ctx, x, floor) -> (F(x), floor', aux)``: the map, the Fed floor it reached, and
whatever the caller wants back from the accepted point (a pytree of per-lane arrays)."""


def compaction_widths(n: int) -> tuple[int, ...]:
    """Narrow buffer widths for ``n`` lanes: ``n/8, n/64, ...`` (:data:`COMPACT_LEVELS` of
    them) while at least :data:`COMPACT_MIN` lanes."""
    widths, w = [], n // COMPACT_RATIO
    while w >= COMPACT_MIN and len(widths) < COMPACT_LEVELS:
        widths.append(w)
        w //= COMPACT_RATIO
    return tuple(widths)


def _body(fmap: Map, ctx, tol, noise):
    """One round for every lane of ``ctx``'s width (inactive lanes keep their values)."""

    def body(c):
        z, fl_z, ext, a = c["z"], c["fl_z"], c["ext"], c["active"]
        fz, fed_share, aux = fmap(ctx, z, fl_z)
        g = fz - z
        ng = jnp.max(jnp.abs(g), axis=0)
        flip = (g * c["g_acc"] < 0) & (jnp.abs(g) > tol)
        # a jump is kept only if no residual changed sign and the residual shrank
        accept = ~(ext & (jnp.any(flip, axis=0) | (ng >= c["n_acc"])))
        rho = jnp.where(c["n_acc"] > 0, ng / jnp.where(c["n_acc"] > 0, c["n_acc"], 1.0), 0.0)
        rho = jnp.where(jnp.isinf(c["n_acc"]), 0.5, rho)  # first round: assume the sqrt rate
        bound = jnp.where(rho < 1.0, ng * rho / jnp.maximum(1.0 - rho, 1e-30), jnp.inf)
        plain = accept & ~ext
        # at the dtype's noise floor the residual cannot shrink further: accept it there
        done = accept & ((ng == 0) | (plain & (ng < tol) & ((bound < tol) | (ng < noise))))
        count = jnp.where(plain, c["count"] + 1, 0)
        # per-asset contraction of the last plain round (assets converge at their own rates)
        g_prev = c["g_acc"]
        rho_a = jnp.where(g * g_prev > 0, g / jnp.where(g_prev != 0, g_prev, 1.0), 0.0)
        slow = (rho_a > 0.5) & (rho_a < 1.0)
        try_ext = plain & ~done & (count >= 2) & jnp.any(slow, axis=0)
        cap = jnp.where(ext, jnp.where(accept, jnp.minimum(2.0 * c["cap"], OMEGA_MAX),
                                       jnp.maximum(0.25 * c["cap"], 2.0)), c["cap"])
        # halfway from the plain step to Aitken's estimate of the limit: an estimate up to
        # twice the true distance still lands short of the fixed point
        aitken = 0.5 * (1.0 + 1.0 / jnp.maximum(1.0 - rho_a, 1e-30))
        omega = jnp.where(slow & try_ext, jnp.minimum(aitken, cap), 1.0)
        # an accelerated move never exceeds the plain step by more than MAX_JUMP log units
        jump = jnp.clip(omega * g, g - MAX_JUMP, g + MAX_JUMP)
        z_next = jnp.where(accept, z + jump, c["x_acc"] + c["g_acc"])
        upd = a & accept
        sel = lambda new, old, m=upd: jnp.where(m, new, old)  # noqa: E731
        return {
            "k": c["k"] + 1,
            "z": jnp.where(a, z_next, z),
            "fl_z": jnp.where(a, jnp.where(accept, fed_share, c["fl_acc"]), fl_z),
            "ext": jnp.where(a, try_ext, ext),
            "x_acc": sel(z, c["x_acc"]),
            "g_acc": sel(g, c["g_acc"]),
            "fl_acc": sel(fed_share, c["fl_acc"]),
            "aux": jax.tree.map(sel, aux, c["aux"]),
            "n_acc": sel(ng, c["n_acc"]),
            "count": jnp.where(a, count, c["count"]),
            "cap": jnp.where(a, cap, c["cap"]),
            "active": a & ~done,
            "rounds": jnp.where(a, c["rounds"] + 1, c["rounds"]),
        }

    return body


def _take(idx):
    """Gather lanes ``idx`` of every per-lane leaf (last axis); scalars pass through."""
    return lambda v: v if jnp.ndim(v) == 0 else jnp.take(v, idx, axis=-1, mode="clip")


def _iterate(fmap: Map, ctx, c: dict, max_rounds, tol, noise, widths: tuple[int, ...]):
    """Rounds at this width while more than ``widths[0]`` lanes are active, then the
    active lanes compacted into ``widths[0]`` lanes (recursively), scattered back."""
    limit = widths[0] if widths else 0
    c = lax.while_loop(lambda c: (c["k"] < max_rounds) & (jnp.sum(c["active"]) > limit),
                       _body(fmap, ctx, tol, noise), c)
    if not widths:
        return c
    n = c["active"].shape[-1]

    def narrow(c):
        # the active lanes, in order; lanes past the active count point past the end
        idx = jnp.nonzero(c["active"], size=widths[0], fill_value=n)[0]
        sub = jax.tree.map(_take(idx), c)
        sub["active"] = sub["active"] & (idx < n)
        sub = _iterate(fmap, jax.tree.map(_take(idx), ctx), sub, max_rounds, tol, noise,
                       widths[1:])
        out = jax.tree.map(lambda v, w: v.at[..., idx].set(w, mode="drop"),
                           {k: v for k, v in c.items() if k != "k"},
                           {k: v for k, v in sub.items() if k != "k"})
        return {**out, "k": sub["k"]}

    return lax.cond((c["k"] < max_rounds) & jnp.any(c["active"]), narrow, lambda c: c, c)


def solve(fmap: Map, ctx, start: jax.Array, tol, max_rounds, *, compact: bool = True):
    """Iterate ``x <- F(x)`` from ``start (A, n)`` to the least fixed point of every lane.

    Plain rounds are Picard steps. After two plain rounds, if an asset's residual shrinks
    slowly (by a ratio ``rho_a`` in (0.5, 1): near-critical convergence), one round tries
    the over-relaxed point ``x_a + omega_a (F(x)_a - x_a)`` with ``omega_a = (1 + 1 / (1 -
    rho_a)) / 2``: halfway from the plain step to Aitken's estimate of the limit (exact for
    a linear map), so an estimate up to twice the true distance still lands short of the
    fixed point (capped, see :data:`OMEGA_START`; 1 for the other assets). The try is
    kept only if no residual changed sign there (a sign change means it jumped past the
    fixed point) and the residual shrank; otherwise the plain step is taken. Convergence
    is checked on plain rounds only: residual ``< tol`` and error bound ``residual rho /
    (1 - rho) < tol``, or a residual at the dtype's noise floor (16 machine epsilons:
    float32 cannot resolve a slowly contracting step better).

    ``ctx`` is a pytree whose non-scalar leaves have lanes on their last axis; it is
    gathered along with the iterate when the active set is compacted (``compact``).

    Returns ``(aux, active, rounds)``: the ``aux`` of the last accepted point (the step
    executes the flows there and moves to its price ``F(x)``), the lanes still not
    converged at ``max_rounds``, and the rounds (evaluations) used. A lane that stops at
    its first round has evaluated ``F`` once, and that evaluation is the step's.
    """
    n = start.shape[-1]
    dtype = start.dtype
    noise = 16.0 * jnp.finfo(dtype).eps
    zero = jnp.zeros((n,), dtype)
    aux_shape = jax.eval_shape(fmap, ctx, start, zero)[2]
    init = {
        "k": jnp.zeros((), dtype), "z": start, "fl_z": zero, "ext": jnp.zeros((n,), bool),
        "x_acc": start, "g_acc": jnp.zeros_like(start), "fl_acc": zero,
        "n_acc": jnp.full((n,), jnp.inf, dtype), "count": zero,
        "cap": jnp.full((n,), OMEGA_START, dtype),
        "active": jnp.ones((n,), bool), "rounds": zero,
        "aux": jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), aux_shape),
    }
    widths = compaction_widths(n) if compact else ()
    c = _iterate(fmap, ctx, init, max_rounds, tol, noise, widths)
    return c["aux"], c["active"], c["rounds"]
