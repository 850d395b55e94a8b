"""The cascade model in plain NumPy, written for clarity (DESIGN.md section 3.8).

This is an independent implementation of the model in ``docs/model.md``: it
shares no code with the JAX kernel except the parameter container, and it
consumes the same standard-normal draws (``normals``, shape
``(n_paths, n_steps, 3 + t_dof)``), so that float64 results can be compared
path by path. It is vectorised over paths with NumPy arrays; the loops over
steps and cascade rounds are plain Python. It is also the baseline of the
performance benchmarks.

Asset order everywhere: ``(btc, alt, eq)``; crypto assets are the first two.
"""

from __future__ import annotations

import numpy as np

from .params import ModelParams, correlation_matrix

HOURS_PER_YEAR = 365.0 * 24.0


def liquidated_share(drawdown, threshold, spread):
    """Share of positions closed at a running drawdown, for thresholds spread
    uniformly over ``[threshold (1 - spread), threshold (1 + spread)]``.

    Continuous and non-decreasing in ``drawdown``; 0 at drawdown 0 when threshold > 0.
    """
    lo = threshold * (1.0 - spread)
    width = np.maximum(2.0 * spread * threshold, 1e-12)
    return np.clip((drawdown - lo) / width, 0.0, 1.0)


def student_t_shocks(normals, p: ModelParams, t_dof: int):
    """Per-step log returns ``(n_paths, n_steps, 3)``: multivariate Student-t with
    unit variance, correlated, scaled to per-step vol, plus the trigger jump."""
    corr = correlation_matrix(p.correlation, p.rho_ca, p.corr_alt_eq)
    chol = _psd_cholesky(corr)
    z = normals[..., :3] @ chol.T
    chi2 = np.sum(normals[..., 3:] ** 2, axis=-1, keepdims=True)
    t = z / np.sqrt(chi2 / t_dof) * np.sqrt((t_dof - 2.0) / t_dof)
    vols = np.array([p.vol_btc, p.vol_alt, p.vol_eq])
    sigma = vols * np.sqrt(p.step_hours / HOURS_PER_YEAR)
    ret = t * sigma
    n_steps = normals.shape[1]
    jump = np.array([p.jump_btc, p.jump_alt, p.jump_eq])
    at_jump = (np.arange(n_steps) == p.jump_step)[None, :, None]
    return ret + at_jump * jump


def _psd_cholesky(corr):
    """Lower-triangular factor of a 3x3 PSD matrix (works when it is singular)."""
    a, b, c = corr[1, 0], corr[2, 0], corr[2, 1]
    l11 = np.sqrt(max(1.0 - a * a, 0.0))
    l21 = (c - a * b) / l11 if l11 > 0 else 0.0
    l22 = np.sqrt(max(1.0 - b * b - l21 * l21, 0.0))
    return np.array([[1.0, 0.0, 0.0], [a, l11, 0.0], [b, l21, l22]])


# --------------------------------------------------------------------------- sectors
# Each sector maps the running drawdowns (worst marks so far, from the start of
# the day) to its *cumulative* forced sales target in dollars. Targets are
# non-decreasing in the drawdowns; flows are the increments of their running max.

def perp_targets(p: ModelParams, dd, rise):
    """Cumulative liquidations (long sells, short buys), each ``(n, 2)`` for btc/alt."""
    buckets = np.asarray(p.perp_leverage_buckets)
    caps = np.array([p.perp_cap_btc, p.perp_cap_alt])
    lev = np.minimum(buckets[None, :], caps[:, None])  # (2, K)
    thr = 1.0 / lev - p.maint_margin
    wl = np.asarray(p.perp_long_weights)
    ws = np.asarray(p.perp_short_weights)
    long_n = p.leverage * np.array([p.perp_long_btc, p.perp_long_alt])
    short_n = p.leverage * np.array([p.perp_short_btc, p.perp_short_alt])
    s = p.entry_dispersion
    f_long = liquidated_share(dd[:, :2, None], thr[None], s)  # (n, 2, K)
    f_short = liquidated_share(rise[:, :, None], thr[None], s)
    return long_n * (f_long @ wl), short_n * (f_short @ ws)


def defi_target(p: ModelParams, dd):
    """Cumulative collateral sold by DeFi liquidations, ``(n, 2)`` for btc/alt."""
    h = np.asarray(p.defi_hf_buckets)
    w = np.asarray(p.defi_hf_weights)
    inv_hf = p.leverage / (p.leverage + h - 1.0)  # 1 / HF at this leverage
    coll = np.array([p.defi_collateral_btc, p.defi_collateral_alt])
    debt = coll[:, None] * w[None, :] * p.defi_liq_threshold * inv_hf[None, :]  # (2, J)
    d_partial = 1.0 - inv_hf
    d_full = 1.0 - p.defi_full_hf * inv_hf
    dd_eff = np.minimum(dd[:, :2] * (1.0 + p.defi_selfref_share * p.defi_selfref_beta), 1.0)
    s = p.entry_dispersion
    share = (p.defi_close_factor * liquidated_share(dd_eff[:, :, None], d_partial, s)
             + (1.0 - p.defi_close_factor) * liquidated_share(dd_eff[:, :, None], d_full, s))
    return (1.0 + p.defi_bonus) * np.sum(share * debt[None], axis=-1)


def treasury_target(p: ModelParams, dd):
    """Cumulative btc sold by treasury companies, ``(n,)``."""
    m = np.asarray(p.treasury_ltv_buckets)
    w = np.asarray(p.treasury_ltv_weights)
    hold = p.treasury_btc * w  # (J,) $ at the start of the day
    ltv = p.treasury_ltv * p.leverage * m
    debt = ltv * hold
    trigger = np.maximum(1.0 - ltv / p.treasury_covenant, 1e-3)
    value = hold[None, :] * (1.0 - dd[:, :1])  # (n, J) holdings at the worst mark
    sale = (debt[None, :] - p.treasury_target * value) / (1.0 - p.treasury_target)
    sale = np.clip(sale, 0.0, value)
    share = liquidated_share(dd[:, :1], trigger[None, :], p.entry_dispersion)
    return np.sum(share * sale, axis=-1)


def fund_target(p: ModelParams, dd):
    """Cumulative sales of leveraged multi-asset funds, ``(n, 3)``, most liquid first."""
    lam = 1.0 + p.leverage * (p.fund_leverage - 1.0)
    equity = p.fund_capital
    hold = lam * equity * np.array([p.fund_w_btc, p.fund_w_alt, p.fund_w_eq])
    loss = dd @ hold
    assets = lam * equity - loss
    capital = equity - loss
    lev_now = assets / np.maximum(capital, 1e-9 * equity)
    triggered = liquidated_share(lev_now / lam - 1.0, p.fund_max_ratio - 1.0, p.entry_dispersion)
    sale = np.clip(assets - p.fund_target_ratio * lam * capital, 0.0, assets)
    total = triggered * sale
    s_eq = np.minimum(total, hold[2])
    s_btc = np.minimum(total - s_eq, hold[0])
    s_alt = total - s_eq - s_btc
    return np.stack([s_btc, s_alt, s_eq], axis=-1)


def bank_losses(p: ModelParams, dd):
    """Per-bank losses ``(n, B)``: total and the crypto-collateral part, in dollars."""
    cap = p.bank_capital * np.asarray(p.bank_weights)
    lam = 1.0 + p.leverage * (p.bank_leverage - 1.0)
    eq_hold = p.bank_eq_share * lam * cap
    exposure = p.integration * np.asarray(p.bank_crypto_max) * cap
    dd_col = p.bank_crypto_btc_share * dd[:, 0] + (1.0 - p.bank_crypto_btc_share) * dd[:, 1]
    crypto = np.maximum(dd_col - p.bank_haircut, 0.0)[:, None] * exposure[None, :]
    total = crypto + dd[:, 2:3] * eq_hold[None, :]
    return total, crypto


def fed_share(p: ModelParams, dd_eq, fed_on):
    """Share of equity forced flow the Fed absorbs: ramps from 0 at the trigger to
    ``fed_put`` at trigger + ``fed_ramp``; full once armed at the end of a step.
    Within a step the cascade keeps the largest share reached in earlier rounds."""
    ramp = np.clip((dd_eq - p.fed_trigger) / p.fed_ramp, 0.0, 1.0)
    return p.fed_put * np.maximum(fed_on, ramp)


def bank_target(p: ModelParams, dd, share):
    """Cumulative equity fire sales of banks restoring leverage, ``(n,)``."""
    cap = p.bank_capital * np.asarray(p.bank_weights)
    lam = 1.0 + p.leverage * (p.bank_leverage - 1.0)
    eq_hold = p.bank_eq_share * lam * cap
    total, _ = bank_losses(p, dd)
    sale = np.minimum((lam - 1.0) * total, eq_hold[None, :]).sum(axis=-1)
    return sale * (1.0 - share)


# --------------------------------------------------------------------------- simulate

def simulate_paths(p: ModelParams, normals, t_dof: int = 4) -> dict[str, np.ndarray]:
    """Simulate one cell over all paths; return the per-path outputs of section 3.6."""
    normals = np.asarray(normals, dtype=np.float64)
    n, n_steps = normals.shape[:2]
    ret = student_t_shocks(normals, p, t_dof)
    depth0 = np.array([p.depth_btc, p.depth_alt, p.depth_eq])
    oi_total = p.leverage * (p.perp_long_btc + p.perp_long_alt
                             + p.perp_short_btc + p.perp_short_alt)

    fund = np.zeros((n, 3))  # log fundamental (exogenous) price
    perm = np.zeros((n, 3))
    trans = np.zeros((n, 3))
    depth = np.ones((n, 3))  # depth as a share of normal
    x = np.zeros((n, 3))
    dd = np.zeros((n, 3))  # running drawdown from the start (worst mark)
    rise = np.zeros((n, 2))  # running rise from the start, crypto
    cum_long = np.zeros((n, 2))
    cum_short = np.zeros((n, 2))
    cum_defi = np.zeros((n, 2))
    cum_treasury = np.zeros(n)
    cum_fund = np.zeros((n, 3))
    cum_bank = np.zeros(n)
    fed_on = np.zeros(n)
    fed_bought = np.zeros(n)
    failed = np.zeros((n, len(p.bank_weights)), dtype=bool)
    bank_loss = np.zeros(n)
    bank_crypto_loss = np.zeros(n)
    peak = np.zeros((n, 3))
    maxdd = np.zeros((n, 3))
    exo_peak = np.zeros((n, 3))
    exo_maxdd = np.zeros((n, 3))
    trough = np.zeros(n)
    trough_step = np.zeros(n)
    rounds_max = np.zeros(n)
    nonconv = np.zeros(n)
    cap = p.bank_capital * np.asarray(p.bank_weights)

    def step_flows(x_try, share_floor):
        """Forced flows of this step at trial prices, and the new running marks."""
        dd_new = np.maximum(dd, 1.0 - np.exp(x_try))
        rise_new = np.maximum(rise, np.exp(x_try[:, :2]) - 1.0)
        lt, st = perp_targets(p, dd_new, rise_new)
        f_long = np.maximum(lt - cum_long, 0.0)
        f_short = np.maximum(st - cum_short, 0.0)
        f_defi = np.maximum(defi_target(p, dd_new) - cum_defi, 0.0)
        f_treas = np.maximum(treasury_target(p, dd_new) - cum_treasury, 0.0)
        f_fund = np.maximum(fund_target(p, dd_new) - cum_fund, 0.0)
        share = np.maximum(share_floor, fed_share(p, dd_new[:, 2], fed_on))
        f_bank = np.maximum(bank_target(p, dd_new, share) - cum_bank, 0.0)
        eq_gross = f_fund[:, 2] + f_bank
        q = np.zeros_like(x_try)
        q[:, :2] = f_long - f_short + f_defi + f_fund[:, :2]
        q[:, 0] += f_treas
        q[:, 2] = (1.0 - share) * eq_gross
        return q, (f_long, f_short, f_defi, f_treas, f_fund, f_bank, eq_gross, share)

    def impact(q):
        d_eff = np.maximum(depth * np.exp(-p.kappa * np.abs(q) / depth0), p.depth_floor)
        return -p.impact_y * 0.01 * np.sign(q) * np.sqrt(np.abs(q) / (depth0 * d_eff)), d_eff

    for t in range(n_steps):
        fund = fund + ret[:, t]
        base = fund + perm + p.resilience * trans
        # cascade: iterate prices -> forced flows -> impact to the least fixed point
        x_try = base.copy()
        imp = q = extra = None
        active = np.ones(n, dtype=bool)
        rounds = np.zeros(n)
        k = 0
        while active.any() and k < p.max_rounds:
            q_new, extra_new = step_flows(x_try, np.zeros(n) if extra is None else extra[-1])
            imp_new, _ = impact(q_new)
            x_new = base + imp_new
            diff = np.max(np.abs(x_new - x_try), axis=-1)
            if k == 0:  # every path is active in the first round
                imp, q, extra = imp_new, q_new, extra_new
            else:
                a = active[:, None]
                imp = np.where(a, imp_new, imp)
                q = np.where(a, q_new, q)
                extra = tuple(np.where(active.reshape((n,) + (1,) * (e.ndim - 1)), en, e)
                              for e, en in zip(extra, extra_new, strict=True))
            x_try = np.where(active[:, None], x_new, x_try)
            rounds = np.where(active, rounds + 1, rounds)
            active = active & (diff >= p.tol)
            k += 1
        nonconv += active
        rounds_max = np.maximum(rounds_max, rounds)
        f_long, f_short, f_defi, f_treas, f_fund, f_bank, eq_gross, share = extra
        _, d_eff = impact(q)

        # commit the step
        x = x_try
        perm = perm + p.perm_share * imp
        trans = p.resilience * trans + (1.0 - p.perm_share) * imp
        depth = d_eff + p.depth_recovery * (1.0 - d_eff)
        cum_long += f_long
        cum_short += f_short
        cum_defi += f_defi
        cum_treasury += f_treas
        cum_fund += f_fund
        cum_bank += f_bank
        fed_bought += share * eq_gross
        dd = np.maximum(dd, 1.0 - np.exp(x))
        rise = np.maximum(rise, np.exp(x[:, :2]) - 1.0)
        losses, crypto = bank_losses(p, dd)
        failed |= losses > (1.0 - p.bank_fail_floor) * cap[None, :]
        bank_loss = np.maximum(bank_loss, losses.sum(-1) / cap.sum())
        bank_crypto_loss = np.maximum(bank_crypto_loss, crypto.sum(-1) / cap.sum())
        fed_on = np.maximum(fed_on, (dd[:, 2] >= p.fed_trigger).astype(float))

        peak = np.maximum(peak, x)
        maxdd = np.maximum(maxdd, 1.0 - np.exp(x - peak))
        exo_peak = np.maximum(exo_peak, fund)
        exo_maxdd = np.maximum(exo_maxdd, 1.0 - np.exp(fund - exo_peak))
        new_trough = x[:, 0] < trough
        trough = np.where(new_trough, x[:, 0], trough)
        trough_step = np.where(new_trough, t + 1.0, trough_step)

    banks_failed = failed.mean(axis=-1)
    liq_long = cum_long.sum(-1)
    liq_short = cum_short.sum(-1)
    safe_exo = np.where(exo_maxdd[:, 0] > 0, exo_maxdd[:, 0], 1.0)
    return {
        "drawdown_btc": maxdd[:, 0],
        "drawdown_alt": maxdd[:, 1],
        "drawdown_eq": maxdd[:, 2],
        "exo_drawdown_btc": exo_maxdd[:, 0],
        "exo_drawdown_alt": exo_maxdd[:, 1],
        "exo_drawdown_eq": exo_maxdd[:, 2],
        "amplification": np.where(exo_maxdd[:, 0] > 0, maxdd[:, 0] / safe_exo, 1.0),
        "liquidated_long": liq_long,
        "liquidated_short": liq_short,
        "defi_liquidated": cum_defi.sum(-1),
        "treasury_sold": cum_treasury,
        "fund_equity_sold": cum_fund[:, 2],
        "bank_loss": bank_loss,
        "bank_crypto_loss": bank_crypto_loss,
        "banks_failed": banks_failed,
        "fed_fired": fed_on,
        "fed_bought": fed_bought,
        "cascade_rounds_max": rounds_max,
        "nonconverged_steps": nonconv,
        "oi_closed": (liq_long + liq_short) / oi_total if oi_total > 0 else np.zeros(n),
        "time_to_trough": trough_step * p.step_hours,
        "systemic": ((banks_failed > 0) | (maxdd[:, 2] >= p.systemic_eq_drawdown)).astype(float),
    }


def cell_statistics(paths: dict[str, np.ndarray], p: ModelParams):
    """Per-cell statistics (section 3.7): ``(stats, probs)`` dictionaries."""
    stats = {}
    for name, v in paths.items():
        v = np.asarray(v, dtype=np.float64)
        s = np.sort(v)
        k = max(1, int(np.floor(0.01 * v.size)))
        q = np.quantile(v, [0.05, 0.5, 0.95, 0.99])
        stats[name] = np.array([v.mean(), v.std(), *q, s[-k:].mean()])
    probs = {
        "p_systemic": float(np.mean(paths["systemic"])),
        "p_fed_fired": float(np.mean(paths["fed_fired"])),
        "p_btc_crash": float(np.mean(paths["drawdown_btc"] >= p.crash_drawdown)),
    }
    return stats, probs
