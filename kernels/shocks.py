"""Exogenous shocks (docs/model.md section 2): draws, correlated Student-t, trigger jump.

Randomness enters the kernel only here. The draws of path ``i`` are standard
normals from ``fold_in(key, i)``, so they depend only on ``(key, i)``: every
cell sees the same shocks under common random numbers, whatever the block,
worker or chunk. Student-t variates are built from normals
(``z / sqrt(chi2 / nu)``, ``chi2`` a sum of ``nu`` squared normals), which is
much faster on CPU than ``jax.random.t``'s gamma rejection sampler.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from .params import ModelParams

HOURS_PER_YEAR = 365.0 * 24.0  # crypto trades round the clock


def draw_normals(key: jax.Array, n_paths: int, n_steps: int, t_dof: int,
                 dtype=jnp.float32, path_offset: int = 0) -> jax.Array:
    """Standard normals ``(n_paths, n_steps, 3 + t_dof)`` for paths ``offset..offset+n``."""
    idx = jnp.arange(n_paths, dtype=jnp.uint32) + jnp.uint32(path_offset)

    def one(i):
        return jax.random.normal(jax.random.fold_in(key, i), (n_steps, 3 + t_dof), dtype)

    return jax.vmap(one)(idx)


def psd_cholesky(corr: jax.Array) -> jax.Array:
    """Lower-triangular factor of a 3x3 positive semi-definite matrix (singular allowed)."""
    a, b, c = corr[1, 0], corr[2, 0], corr[2, 1]
    l11 = jnp.sqrt(jnp.maximum(1.0 - a * a, 0.0))
    l21 = jnp.where(l11 > 0, (c - a * b) / jnp.where(l11 > 0, l11, 1.0), 0.0)
    l22 = jnp.sqrt(jnp.maximum(1.0 - b * b - l21 * l21, 0.0))
    zero = jnp.zeros_like(a)
    one = jnp.ones_like(a)
    return jnp.stack([jnp.stack([one, zero, zero]), jnp.stack([a, l11, zero]),
                      jnp.stack([b, l21, l22])])


def correlation(p: ModelParams) -> jax.Array:
    """Shock correlation matrix of (btc, alt, eq)."""
    c, r = p.correlation, p.rho_ca
    ae = jnp.where(jnp.isnan(p.corr_alt_eq), r * c, p.corr_alt_eq)
    one = jnp.ones_like(c)
    return jnp.stack([jnp.stack([one, r, c]), jnp.stack([r, one, ae]), jnp.stack([c, ae, one])])


def step_vols(p: ModelParams) -> jax.Array:
    """Per-step volatility ``(3,)``: crypto over a 365 x 24-hour year; equities over a
    year of ``eq_trading_days`` days, each day's variance spread over its 24 hours (index
    futures trade round the clock; a trading day carries ``vol_eq^2 / eq_trading_days``)."""
    crypto = jnp.stack([p.vol_btc, p.vol_alt]) * jnp.sqrt(p.step_hours / HOURS_PER_YEAR)
    eq = p.vol_eq * jnp.sqrt(p.step_hours / (24.0 * p.eq_trading_days))
    return jnp.concatenate([crypto, eq[None]])


class Shocks(NamedTuple):
    """A chunk of draws made ready for the kernel, paths on the last axis.

    Under common random numbers every cell of a block shares them, so they are made
    once per block (:func:`prepare`) and each cell only mixes and scales them
    (:func:`returns`).
    """

    z: jax.Array  # (T, 3, n) standard normals of (btc, alt, eq)
    scale: jax.Array  # (T, n) Student-t scale sqrt((nu - 2) / nu) / sqrt(chi2 / nu)


def prepare(normals: jax.Array, t_dof: int) -> Shocks:
    """Draws ``(n, T, 3 + t_dof)`` -> :class:`Shocks` (the transposes and the chi-square
    scale that do not depend on the cell)."""
    chi2 = jnp.sum(normals[..., 3:] ** 2, axis=-1)
    scale = jnp.sqrt((t_dof - 2.0) / t_dof) / jnp.sqrt(chi2 / t_dof)
    return Shocks(jnp.transpose(normals[..., :3], (1, 2, 0)), jnp.transpose(scale, (1, 0)))


def returns(shocks: Shocks, p: ModelParams) -> jax.Array:
    """Per-step log returns ``(T, 3, n)`` of one cell, the scheduled trigger jump included:
    correlated by the Cholesky factor of :func:`correlation`, Student-t with unit
    variance, scaled by :func:`step_vols`."""
    chol = psd_cholesky(correlation(p))
    z = shocks.z
    # explicit multiply-and-sum, not a dot: a dot's rounding may depend on the batch shape
    mixed = jnp.stack([chol[i, 0] * z[:, 0] + chol[i, 1] * z[:, 1] + chol[i, 2] * z[:, 2]
                       for i in range(3)], axis=1)
    ret = mixed * shocks.scale[:, None, :] * step_vols(p)[:, None]
    n_steps = z.shape[0]
    jump = jnp.stack([p.jump_btc, p.jump_alt, p.jump_eq])
    at_jump = (jnp.arange(n_steps) == p.jump_step)[:, None, None]
    return ret + at_jump * jump[:, None]


def exogenous_returns(normals: jax.Array, p: ModelParams, t_dof: int) -> jax.Array:
    """Per-step log returns ``(n, T, 3)`` from draws ``(n, T, 3 + t_dof)`` (paths first)."""
    return jnp.transpose(returns(prepare(normals, t_dof), p), (2, 0, 1))
