"""The cascade model in plain NumPy, written from ``docs/model.md`` for clarity.

An independent implementation of sections 1-7 of the specification, sharing no code with
the JAX kernel but ``ModelParams``, ``correlation_matrix`` and the Wilson bounds of
``kernels.stats.with_intervals``. It consumes the kernel's standard-normal draws
(``normals (n_paths, n_steps, 3 + t_dof)``, :func:`kernels.shocks.draw_normals`), so float64
results compare path by path (``tests/kernels/test_kernel_reference.py``); it is also the NumPy
baseline of the benchmarks. Paths are on the first axis, assets ``(btc, alt, eq)`` on the
second; steps and cascade rounds are Python loops. The within-step cascade is the plain
fixed-point (Picard) iteration ``x <- F(x)`` of section 5, stopped on the residual alone. Units:
dollars, log prices relative to the open, drawdowns and shares as fractions.
"""

from __future__ import annotations

import math

import numpy as np

from .outputs import PATH_OUTPUTS
from .params import ModelParams, correlation_matrix

MIN_DAILY_VOL = 1e-4  # floor of the daily vol in the perp distance scale (the spec is silent)
# Bounds of a log price: a short squeeze valued at the current price has no fixed point in a
# thin enough book; F is clipped here and a step that reaches them is capped (spec silent)
X_MIN, X_MAX = -50.0, 10.0
_DT = np.float64  # the working float type; :func:`simulate_paths` sets it for one call


def _v(x):
    return np.asarray(x, dtype=_DT)


def ramp(d, thr, s):
    """``S(D; d)``: share of thresholds spread uniformly over ``d (1 +- s)`` passed at ``D``
    (a step at ``d`` when the spread is 0)."""
    width = 2.0 * s * thr
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.clip((d - thr * (1.0 - s)) / width, 0.0, 1.0)
    return np.where(width > 0, r, (d >= thr).astype(_DT))


# ------------------------------------------------------------------ 2. exogenous shocks

def _cholesky_psd(c):
    """Lower factor ``C`` with ``C C^T = c`` for a positive semi-definite 3x3 matrix."""
    low = np.zeros((3, 3))
    for i in range(3):
        for j in range(i):
            rest = c[i, j] - low[i, :j] @ low[j, :j]
            low[i, j] = rest / low[j, j] if low[j, j] > 0 else 0.0
        low[i, i] = np.sqrt(max(c[i, i] - low[i, :i] @ low[i, :i], 0.0))
    return low


def exogenous_returns(p: ModelParams, normals, t_dof: int):
    """Per-step log returns ``(n, T, 3)``: unit-variance Student-t ``t sigma`` plus the jump."""
    chol = _v(_cholesky_psd(correlation_matrix(p.correlation, p.rho_ca, p.corr_alt_eq)))
    z = np.einsum("ij,ntj->nti", chol, normals[..., :3])
    chi2 = np.sum(normals[..., 3:] ** 2, axis=-1, keepdims=True)
    t = z / np.sqrt(chi2 / t_dof) * math.sqrt((t_dof - 2.0) / t_dof)
    sigma = _v([p.vol_btc, p.vol_alt, p.vol_eq]) * np.sqrt(
        p.step_hours / _v([8760.0, 8760.0, 24.0 * p.eq_trading_days]))
    jump = np.zeros((normals.shape[1], 3), _DT)
    jump[np.arange(normals.shape[1]) == p.jump_step] = [p.jump_btc, p.jump_alt, p.jump_eq]
    return t * sigma + jump[None]


# ------------------------------------------------------------------ 3. market

def per_step_rates(p: ModelParams):
    """``(r, g)``: survival of transient impact and share of the depth gap recovered per step;
    ``resilience`` and ``depth_recovery`` are stated per 15 minutes (``tau = step_hours /
    0.25``: ``r = resilience^tau``, ``g = 1 - (1 - depth_recovery)^tau``)."""
    tau = p.step_hours / 0.25
    return p.resilience**tau, 1.0 - (1.0 - p.depth_recovery) ** tau


def impact(p: ModelParams, memory, q, depth):
    """Log-price impact ``I (n, 3)`` of this step's net sales ``q`` ($, sell > 0) on top of the
    remembered flow ``memory`` ($), and the effective depth share ``d_eff``."""
    depth0 = _v([p.depth_btc, p.depth_alt, p.depth_eq])
    d_eff = np.maximum(depth * np.exp(-p.kappa * np.abs(q) / depth0), p.depth_floor)
    m = memory + q
    return -p.impact_y * 0.01 * np.sign(m) * np.sqrt(np.abs(m) / (depth0 * d_eff)), d_eff


# ------------------------------------------------------------------ 4. sectors

def survivor_share(u, a, k):
    """``G(u)``: share of a perp bucket (``a = k mu``) liquidated once the adverse log move
    is ``u >= 0``. For ``z = k u <= a`` this is the sinh form ``2 e^-a sinh^2(z/2) / (1 -
    e^-a)``, written as ``e^(z-a) (1 - e^-z)^2 / (2 (1 - e^-a))`` (the same number, with no
    cancellation near 0 and no overflow for large ``a``)."""
    z = k * u
    den, zl, zh = -np.expm1(-a), np.minimum(z, a), np.maximum(z, a)
    low = np.exp(zl - a) * np.expm1(-zl) ** 2 / (2.0 * den)
    high = 1.0 - (np.exp(a - zh) - np.exp(-a - zh)) / (2.0 * den)
    return np.where(z <= a, low, high)


def perp_shares(p: ModelParams, down, up):
    """Cumulative liquidated shares (long, short), each ``(n, 2)``, from the running adverse
    log moves ``down = -L`` and ``up = U`` (``(n, 2)``)."""
    daily = np.maximum(_v([p.vol_btc, p.vol_alt]) / math.sqrt(365.0), MIN_DAILY_VOL)
    k = math.sqrt(2.0 / p.perp_holding_days) / daily  # (2,) 1/log units
    lev = np.minimum(_v(p.perp_leverage_buckets)[None, :],
                     _v([[p.perp_cap_btc], [p.perp_cap_alt]]))  # (2, K)
    mu_long = -np.log(1.0 - 1.0 / lev + p.maint_margin)
    mu_short = np.log(1.0 + 1.0 / lev - p.maint_margin)
    kk = k[None, :, None]
    g_long = survivor_share(down[:, :, None], kk * mu_long[None], kk)  # (n, 2, K)
    g_short = survivor_share(up[:, :, None], kk * mu_short[None], kk)
    # row sums, not ``@``: BLAS may round a row differently with the number of rows, and the
    # cascade evaluates a varying subset of the paths (its results must not depend on that)
    return (np.sum(g_long * _v(p.perp_long_weights), axis=-1),
            np.sum(g_short * _v(p.perp_short_weights), axis=-1))


def defi_target(p: ModelParams, dd):
    """Cumulative DeFi collateral sold ($), ``(n, 2)``, from the running drawdowns ``dd (n, 3)``."""
    inv_h = 1.0 / (1.0 + (_v(p.defi_hf_buckets) - 1.0) / p.leverage) if p.leverage > 0 \
        else np.zeros(len(p.defi_hf_buckets), _DT)  # 1 / H(lambda); no debt at lambda = 0
    coll = p.channel_defi * _v([p.defi_collateral_btc, p.defi_collateral_alt])
    debt = coll[:, None] * _v(p.defi_hf_weights) * p.defi_liq_threshold * inv_h  # (2, J)
    fall = dd[:, :2, None] * (1.0 + p.defi_selfref_share * p.defi_selfref_beta)
    d_eff = np.minimum(fall, 1.0)  # D' (n, 2, 1): self-referential collateral falls further
    share = (p.defi_close_factor * ramp(d_eff, 1.0 - inv_h, p.dispersion)
             + (1.0 - p.defi_close_factor) * ramp(d_eff, 1.0 - p.defi_full_hf * inv_h,
                                                   p.dispersion))
    return (1.0 + p.defi_bonus) * np.sum(share * debt[None], axis=-1)


def treasury_target(p: ModelParams, dd):
    """Cumulative btc sold by treasury companies ($), ``(n,)``."""
    hold = p.channel_treasury * p.treasury_btc * _v(p.treasury_ltv_weights)  # V_j
    ltv = p.leverage * p.treasury_ltv * _v(p.treasury_ltv_buckets)  # l_j
    value = hold[None, :] * (1.0 - dd[:, :1])  # (n, J)
    sale = np.clip((ltv * hold - p.treasury_target * value) / (1.0 - p.treasury_target),
                   0.0, value)
    return np.sum(ramp(dd[:, :1], 1.0 - ltv / p.treasury_covenant, p.dispersion) * sale, -1)


def fund_target(p: ModelParams, dd):
    """Cumulative fund sales ($): gross equities ``(n,)`` and crypto ``(n, 2)``."""
    e, h = p.fund_capital, p.fund_eq_leverage * p.fund_capital  # capital E, equities H
    book = p.leverage * p.fund_crypto_book * _v([p.fund_crypto_btc_share,
                                                  1.0 - p.fund_crypto_btc_share])
    v = dd[:, 0] * book[0] + dd[:, 1] * book[1]  # variation margin paid (row by row, no BLAS)
    eq_left = h * (1.0 - dd[:, 2])
    e_margin = np.minimum(p.channel_fund_margin * p.fund_eq_sale_share
                          * np.maximum(v - p.fund_buffer * book.sum(), 0.0), eq_left)
    a0, loss = h + book.sum(), v + h * dd[:, 2]
    lam0, assets, cap = a0 / e, a0 - loss, e - loss
    # an insolvent fund (K <= 0) counts as infinitely levered (spec silent; as the kernel)
    lam_f = assets / np.maximum(cap, 1e-9 * e)
    hit = ramp(lam_f / max(lam0, 1e-12) - 1.0, p.fund_max_ratio - 1.0, p.dispersion)
    sale = p.channel_fund_delever * hit * np.clip(assets - p.fund_target_ratio * lam0 * cap, 0.0,
                                                  np.maximum(assets, 0.0))
    s_eq = np.minimum(sale, eq_left - e_margin)
    left = book[None, :] * (1.0 - dd[:, :2])  # what remains of the crypto book
    total = left.sum(-1)
    s_crypto = np.minimum(sale - s_eq, total) / np.where(total > 0, total, 1.0)
    return e_margin + s_eq, left * s_crypto[:, None]


def bank_setup(p: ModelParams):
    """Per-bank balance sheets ($, ``(B,)`` each): capital, equities, liquid assets,
    wholesale funding and crypto-collateral exposure at the open."""
    k = p.bank_capital * _v(p.bank_weights)
    assets = p.bank_leverage * k
    exposure = p.channel_collateral * k * (
        min(p.leverage * p.bank_crypto_floor, p.bank_crypto_cap)
        + p.integration * p.leverage * (_v(p.bank_crypto_max) - p.bank_crypto_floor))
    return dict(cap=k, eq=p.bank_eq_share * assets, liquid=p.bank_liquid_share * assets,
                wholesale=p.bank_wholesale_share * (assets - k), exposure=exposure)


def bank_marks(p: ModelParams, dd, col_prev, realised, run_prev, phi):
    """Banks at running drawdowns ``dd``: collateral share, crypto loss and total loss
    ``(n, B)``, run intensity ``(n, B)`` and cumulative equity sales net of the Fed ``(n,)``."""
    b = bank_setup(p)
    d_col = p.bank_crypto_btc_share * dd[:, 0] + (1.0 - p.bank_crypto_btc_share) * dd[:, 1]
    col = np.maximum(col_prev, ramp(d_col, p.bank_margin_call, p.dispersion))
    unit = realised + (1.0 - col_prev) * np.maximum(d_col - p.bank_haircut, 0.0)
    crypto = b["exposure"][None, :] * unit[:, None]
    lm = crypto + b["eq"][None, :] * dd[:, 2:3]
    s_e = p.bank_eq_sale_share

    def excess(rho):
        return np.maximum(rho * p.run_share * b["wholesale"] - b["liquid"], 0.0)

    def fire(rho):
        return p.run_discount * (1.0 - s_e) * excess(rho) * (1.0 - phi)[:, None]

    run = np.maximum(run_prev, p.channel_runs * ramp((lm + fire(run_prev)) / b["cap"],
                                                     p.run_threshold, p.dispersion))
    loss = lm + fire(run)
    gross = np.minimum(s_e * (p.channel_bank_sales * (p.bank_leverage - 1.0) * loss
                              + excess(run)), b["eq"] * (1.0 - dd[:, 2:3]))
    return dict(col=col, d_col=d_col, crypto=crypto, loss=loss, run=run,
                eq=(1.0 - phi) * gross.sum(-1))


def fed_share(p: ModelParams, dd_eq, fired):
    """The Fed's share ``phi``: a ramp past the trigger, ``fed_put`` once it has fired."""
    return p.fed_put * np.maximum(fired, np.clip((dd_eq - p.fed_trigger) / p.fed_ramp, 0.0, 1.0))


def evaluate(p: ModelParams, s: dict, x, floor):
    """Every sector at trial log prices ``x (n, 3)`` given the start-of-step state ``s``
    and the Fed floor of earlier rounds: net forced sales ``q (n, 3)`` ($) and the step's
    flows (this step's dollars, or new cumulative shares)."""
    low, up = np.minimum(s["low"], x), np.maximum(s["up"], x[:, :2])
    dd, price = -np.expm1(low), np.exp(x[:, :2])
    scale = p.channel_perps * p.leverage  # N = lambda x notional, times the channel switch
    long_n, short_n = scale * _v([[p.perp_long_btc, p.perp_long_alt],
                                  [p.perp_short_btc, p.perp_short_alt]])
    g_long, g_short = perp_shares(p, -low[:, :2], up)
    g_long, g_short = np.maximum(s["long_share"], g_long), np.maximum(s["short_share"], g_short)
    phi = np.maximum(floor, fed_share(p, dd[:, 2], s["fed_on"]))
    fund_eq, fund_crypto = fund_target(p, dd)
    bank = bank_marks(p, dd, s["col_share"], s["col_realised"], s["run"], phi)
    gamma = _v([p.bank_crypto_btc_share, 1.0 - p.bank_crypto_btc_share])
    fl = dict(  # this step's flows ($): the increase of each cumulative target
        long_share=g_long, short_share=g_short, phi=phi, bank=bank,
        long_usd=long_n * (g_long - s["long_share"]) * price,
        short_usd=short_n * (g_short - s["short_share"]) * price,
        defi=np.maximum(defi_target(p, dd) - s["defi"], 0.0),
        treasury=np.maximum(treasury_target(p, dd) - s["treasury"], 0.0),
        fund_eq=np.maximum(fund_eq - s["fund_eq"], 0.0),
        fund_crypto=np.maximum(fund_crypto - s["fund_crypto"], 0.0),
        bank_eq=np.maximum(bank["eq"] - s["bank_eq"], 0.0),
        col_usd=bank_setup(p)["exposure"].sum() * (bank["col"] - s["col_share"])[:, None]
        * gamma * price)
    crypto = fl["long_usd"] - fl["short_usd"] + fl["defi"] + fl["fund_crypto"] + fl["col_usd"]
    q = np.stack([crypto[:, 0] + fl["treasury"], crypto[:, 1],
                  (1.0 - phi) * fl["fund_eq"] + fl["bank_eq"]], axis=-1)
    return q, fl


# ------------------------------------------------------------------ 5. the day

# the start-of-step state that evaluate() reads
_EVAL_STATE = ("low", "up", "long_share", "short_share", "defi", "treasury", "fund_eq",
               "fund_crypto", "bank_eq", "col_share", "col_realised", "run", "fed_on")


def _start(n, n_banks):
    """The state at the open: log prices 0, normal depth, nothing sold ($, shares)."""
    shapes = [((n, 3), "fund mem_perm mem_trans low peak maxdd exo_peak exo_maxdd"),
              ((n, 2), "up long_share short_share defi fund_crypto"), ((n, n_banks), "run"),
              ((n,), "liq_long liq_short treasury fund_eq bank_eq col_share col_realised "
               "col_sold bank_loss bank_crypto_loss fed_on fed_bought trough_step rounds_max "
               "capped")]
    s = {k: np.zeros(shape, _DT) for shape, keys in shapes for k in keys.split()}
    return dict(s, depth=np.ones((n, 3), _DT), failed=np.zeros((n, n_banks), bool))


def cascade(p: ModelParams, s: dict, f, memory, compact: bool = True):
    """Plain fixed-point iteration of ``x = F(x) = f + I(memory + q(x))`` per path from
    ``x0 = f + I(memory)``: returns the last evaluated point, the Fed floor used there,
    the rounds (evaluations of F) and whether the path hit ``max_rounds``.

    ``compact`` (default) evaluates only the paths still active in each round (the active
    set, ``np.flatnonzero``); ``compact=False`` evaluates every path in every round and
    freezes the converged ones with ``np.where``. The two give bit-identical results (every
    operation is row by row); the second is kept to check that."""
    n, max_rounds = f.shape[0], int(p.max_rounds)
    tol = max(p.tol, 8.0 * np.finfo(_DT).eps)
    x = np.clip(f + impact(p, memory, np.zeros_like(f), s["depth"])[0], X_MIN, X_MAX)
    floor, rounds = np.zeros(n, _DT), np.zeros(n, _DT)
    capped, active = np.zeros(n, bool), np.ones(n, bool)
    for k in range(max_rounds):
        if not compact:
            if not active.any():
                break
            q, fl = evaluate(p, s, x, floor)
            fx = np.clip(f + impact(p, memory, q, s["depth"])[0], X_MIN, X_MAX)
            go = active & ~(np.max(np.abs(fx - x), axis=-1) < tol)
            rounds = np.where(active, rounds + 1, rounds)
            if k + 1 == max_rounds:
                capped = go
                break
            x = np.where(go[:, None], fx, x)
            floor = np.where(go, fl["phi"], floor)
            active = go
            continue
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        sub = s if idx.size == n else {key: s[key][idx] for key in _EVAL_STATE}
        q, fl = evaluate(p, sub, x[idx], floor[idx])
        fx = np.clip(f[idx] + impact(p, memory[idx], q, s["depth"][idx])[0], X_MIN, X_MAX)
        go = ~(np.max(np.abs(fx - x[idx]), axis=-1) < tol)  # NaN keeps going (and caps)
        rounds[idx] += 1
        if k + 1 == max_rounds:
            capped[idx[go]] = True
            break
        x[idx[go]] = fx[go]
        floor[idx[go]] = fl["phi"][go]
        active[idx[~go]] = False
    return x, floor, rounds, capped


def step(p: ModelParams, s: dict, ret, t: int, compact: bool = True) -> dict:
    """Advance every path by one step with exogenous log returns ``ret (n, 3)``."""
    f = s["fund"] + ret
    r, g = per_step_rates(p)
    memory = s["mem_perm"] + r * s["mem_trans"]
    x_eval, floor, rounds, capped = cascade(p, s, f, memory, compact)
    q, fl = evaluate(p, s, x_eval, floor)  # the step's flows: at the last evaluated point
    imp, d_eff = impact(p, memory, q, s["depth"])
    x = np.clip(f + imp, X_MIN, X_MAX)  # ... and its price: F of that point
    capped |= np.any((x <= X_MIN) | (x >= X_MAX), axis=-1)
    b, bank = bank_setup(p), fl["bank"]
    n = dict(s)
    n.update(
        fund=f, mem_perm=s["mem_perm"] + p.perm_share * q,
        mem_trans=r * s["mem_trans"] + (1.0 - p.perm_share) * q,
        depth=d_eff + g * (1.0 - d_eff),
        low=np.minimum(s["low"], x), up=np.maximum(s["up"], x[:, :2]),
        long_share=fl["long_share"], short_share=fl["short_share"],
        liq_long=s["liq_long"] + fl["long_usd"].sum(-1),
        liq_short=s["liq_short"] + fl["short_usd"].sum(-1),
        defi=s["defi"] + fl["defi"], treasury=s["treasury"] + fl["treasury"],
        fund_eq=s["fund_eq"] + fl["fund_eq"], fund_crypto=s["fund_crypto"] + fl["fund_crypto"],
        bank_eq=s["bank_eq"] + fl["bank_eq"], col_share=bank["col"],
        col_realised=s["col_realised"] + (bank["col"] - s["col_share"])
        * np.maximum(bank["d_col"] - p.bank_haircut, 0.0),
        col_sold=s["col_sold"] + fl["col_usd"].sum(-1), run=bank["run"],
        failed=s["failed"] | (bank["loss"] > (1.0 - p.bank_fail_floor) * b["cap"]),
        bank_loss=np.maximum(s["bank_loss"], bank["loss"].sum(-1) / b["cap"].sum()),
        bank_crypto_loss=np.maximum(s["bank_crypto_loss"],
                                    bank["crypto"].sum(-1) / b["cap"].sum()),
        fed_bought=s["fed_bought"] + fl["phi"] * fl["fund_eq"],
        rounds_max=np.maximum(s["rounds_max"], rounds), capped=s["capped"] + capped,
        trough_step=np.where(x[:, 0] < s["low"][:, 0], t + 1.0, s["trough_step"]),
    )
    n["x"] = x
    n["fed_on"] = np.maximum(s["fed_on"], (-np.expm1(n["low"][:, 2]) >= p.fed_trigger).astype(_DT))
    n["peak"] = np.maximum(s["peak"], x)
    n["maxdd"] = np.maximum(s["maxdd"], -np.expm1(x - n["peak"]))
    n["exo_peak"] = np.maximum(s["exo_peak"], f)
    n["exo_maxdd"] = np.maximum(s["exo_maxdd"], -np.expm1(f - n["exo_peak"]))
    return n


# ------------------------------------------------------------------ 6. outputs

def simulate_paths(p: ModelParams, normals, t_dof: int = 4, return_prices: bool = False,
                   dtype="float64", compact: bool = True):
    """Simulate one cell on draws ``normals (n_paths, n_steps, 3 + t_dof)``: every per-path
    output of :data:`kernels.outputs.PATH_OUTPUTS` (``(n_paths,)`` arrays of ``dtype``), and
    with ``return_prices`` also the end-of-step log prices ``(n_steps, n_paths, 3)``.
    ``dtype`` is the working float type of the whole simulation (``"float64"`` or
    ``"float32"``; parameters are rounded to it); ``compact`` see :func:`cascade`."""
    global _DT
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise ValueError(f"dtype={dtype!r}; allowed: float32, float64")
    saved, _DT = _DT, dt.type
    try:
        return _simulate(p, np.asarray(normals, dtype=_DT), t_dof, return_prices, compact)
    finally:
        _DT = saved


def _simulate(p: ModelParams, normals, t_dof: int, return_prices: bool, compact: bool):
    n, n_steps = normals.shape[:2]
    ret = exogenous_returns(p, normals, t_dof)
    s, prices = _start(n, len(p.bank_weights)), []
    for t in range(n_steps):
        s = step(p, s, ret[:, t], t, compact)
        prices.append(s["x"])
    out = outputs(p, s, n_steps)
    return (out, np.stack(prices)) if return_prices else out


def outputs(p: ModelParams, s: dict, n_steps: int) -> dict:
    """The per-path outputs of section 6 from the end-of-day state ``s`` (:func:`step`)."""
    n = s["fund"].shape[0]
    b = bank_setup(p)
    long_n, short_n = p.leverage * _v([[p.perp_long_btc, p.perp_long_alt],
                                       [p.perp_short_btc, p.perp_short_alt]])
    oi = long_n.sum() + short_n.sum()  # open interest at the open, whatever the switch
    closed = p.channel_perps * (s["long_share"] @ long_n + s["short_share"] @ short_n)
    failed = s["failed"] @ (b["cap"] / b["cap"].sum())
    w = b["wholesale"].sum()
    run_share = s["run"] @ (p.run_share * b["wholesale"]) / w if w > 0 else np.zeros(n, _DT)
    exo = s["exo_maxdd"][:, 0]
    slack = 1.0 - 1e-6  # shares compared with a relative slack (section 6)
    out = {
        "drawdown_btc": s["maxdd"][:, 0], "drawdown_alt": s["maxdd"][:, 1],
        "drawdown_eq": s["maxdd"][:, 2], "exo_drawdown_btc": exo,
        "exo_drawdown_alt": s["exo_maxdd"][:, 1], "exo_drawdown_eq": s["exo_maxdd"][:, 2],
        "amplification": np.where(exo > 0, s["maxdd"][:, 0] / np.where(exo > 0, exo, 1.0), 1.0),
        "liquidated_long": s["liq_long"], "liquidated_short": s["liq_short"],
        "defi_liquidated": s["defi"].sum(-1), "treasury_sold": s["treasury"],
        "fund_equity_sold": s["fund_eq"], "fund_crypto_sold": s["fund_crypto"].sum(-1),
        "collateral_liquidated": s["col_sold"], "bank_equity_sold": s["bank_eq"],
        "bank_loss": s["bank_loss"], "bank_crypto_loss": s["bank_crypto_loss"],
        "run_share": run_share, "banks_failed": failed, "fed_fired": s["fed_on"],
        "fed_bought": s["fed_bought"], "cascade_rounds_max": s["rounds_max"],
        "capped_steps": s["capped"] / n_steps,
        "oi_closed": closed / oi if oi > 0 else np.zeros(n, _DT),
        "time_to_trough": s["trough_step"] * p.step_hours,
        "systemic": ((failed >= slack * p.systemic_bank_share)
                     | (s["maxdd"][:, 2] >= p.systemic_eq_drawdown)
                     | (run_share >= slack * p.systemic_run_share)).astype(_DT),
    }
    assert set(out) == set(PATH_OUTPUTS)
    return {name: out[name] for name in PATH_OUTPUTS}


# ------------------------------------------------------------------ 7. statistics

def summarise(v):
    """mean, std, se, q05, q50, q95, q99 (linear interpolation at ``q (n - 1)``) and es99 (mean
    of the largest ``max(1, int(0.01 n))`` paths) of one output; all NaN if any value is not
    finite."""
    v = np.asarray(v, dtype=np.float64)
    n = v.size
    if not np.all(np.isfinite(v)):
        return np.full(8, np.nan)
    s = np.sort(v)
    pos = np.array([0.05, 0.5, 0.95, 0.99]) * (n - 1)
    lo = np.floor(pos).astype(int)
    frac = pos - lo
    q = s[lo] * (1.0 - frac) + s[np.minimum(lo + 1, n - 1)] * frac
    std = np.sqrt(np.mean((v - v.mean()) ** 2))
    return np.array([v.mean(), std, std / np.sqrt(n), *q, s[n - max(1, int(0.01 * n)):].mean()])


def cell_statistics(paths: dict[str, np.ndarray], p: ModelParams):
    """Per-cell statistics (section 7): ``(stats, probs)``; ``stats[var]`` in the order of
    :data:`kernels.outputs.STATS`, ``probs`` every probability with its Wilson 95 % bounds
    (NaN when any output of the cell is not finite)."""
    from .stats import with_intervals  # shared by permission: the bounds are plain NumPy

    stats = {name: summarise(paths[name]) for name in PATH_OUTPUTS}
    finite = all(np.all(np.isfinite(paths[name])) for name in PATH_OUTPUTS)
    dd = np.asarray(paths["drawdown_btc"])
    events = {"p_systemic": paths["systemic"], "p_fed_fired": paths["fed_fired"],
              "p_btc_crash": (dd >= p.crash_drawdown).astype(np.float64)}
    probs = {k: np.float64(np.mean(v)) if finite else np.float64(np.nan)
             for k, v in events.items()}
    return stats, with_intervals(probs, dd.size)
