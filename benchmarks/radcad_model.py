"""The cascade model written the way radCAD users write one (run in its own venv).

Scalar state (one float per variable and asset, lists for assets and banks), one
policy per step that computes the step's exogenous move and the within-step
cascade in plain Python, one state-update function per variable, one Monte Carlo
run per path, radCAD's multiprocessing backend. It is a scalar port of the model of
``docs/model.md`` sections 2-6 (the JAX kernel ``kernels/``: shocks, market, the
six sectors, the step's bookkeeping and the per-path outputs) and reads the same
standard-normal draws (``normals[run, t]``), so with float64 draws its per-path
outputs agree with ``kernels.simulate.simulate_cell`` under ``jax_enable_x64``.

The within-step cascade (section 5) is plain fixed-point (Picard) iteration
``x <- F(x)`` from the remembered flow's price, like the kernel's, with the kernel's
stopping rule (residual ``r = max_a |F(x)_a - x_a| < tol`` and error
bound ``r rho / (1 - rho) < tol``, ``rho`` the observed contraction, or ``r`` at 16
machine epsilons, or ``max_rounds``). Both converge to the same least fixed point
within ``tol``; rounding may move a near-critical path's round count, so
``cascade_rounds_max`` is not compared, every other output is.

This file runs under ``benchmarks/.venv-radcad`` (radcad pins numpy < 1.26.4, so
it cannot live in the project's lock); it imports nothing from the project.
Usage: ``python radcad_model.py PARAMS.json NORMALS.npy OUT.json [--processes N]
[--deepcopy]`` (radCAD's default deep copy of the state; off unless given)
"""

from __future__ import annotations

import functools
import json
import math
import os
import sys
import time

import numpy as np

HOURS_PER_YEAR = 365.0 * 24.0
DAYS_PER_YEAR = 365.0
MIN_DAILY_VOL = 1e-4  # as the kernel: keeps the perp distance scale finite at vol 0
REFERENCE_STEP_HOURS = 0.25  # resilience and depth_recovery are stated per 15 minutes
X_MIN, X_MAX = -50.0, 10.0  # bounds of a log price (as the kernel; reaching one is capped)
EPS64 = 2.220446049250313e-16
A3 = (0, 1, 2)
A2 = (0, 1)
NORMALS = None  # (n_paths, n_steps, 3 + t_dof) float64, loaded per process


def _share(d, thr, s):
    """Share past thresholds spread uniformly over ``thr (1 -+ s)`` (a step at ``thr`` if
    the spread is 0)."""
    lo = thr * (1.0 - s)
    w = 2.0 * s * thr
    if w > 0:
        return min(max((d - lo) / w, 0.0), 1.0)
    return float(d >= thr)


def _chol(p):
    c, r = p["correlation"], p["rho_ca"]
    ae = r * c if math.isnan(p["corr_alt_eq"]) else p["corr_alt_eq"]
    a, b = r, c
    l11 = math.sqrt(max(1.0 - a * a, 0.0))
    l21 = (ae - a * b) / l11 if l11 > 0 else 0.0
    l22 = math.sqrt(max(1.0 - b * b - l21 * l21, 0.0))
    return ((1.0, 0.0, 0.0), (a, l11, 0.0), (b, l21, l22))


def _step_vols(p):
    """Per-step volatility: crypto over 365 x 24 h, equities over eq_trading_days days."""
    crypto = math.sqrt(p["step_hours"] / HOURS_PER_YEAR)
    return (p["vol_btc"] * crypto, p["vol_alt"] * crypto,
            p["vol_eq"] * math.sqrt(p["step_hours"] / (24.0 * p["eq_trading_days"])))


def _per_step(p):
    """Survival of transient impact and share of the depth gap recovered, per step."""
    k = p["step_hours"] / REFERENCE_STEP_HOURS
    return p["resilience"] ** k, 1.0 - (1.0 - p["depth_recovery"]) ** k


def _fed_share(p, dd_eq, fed_on, floor):
    """Fed's share of equity flow: ramps over ``fed_ramp`` past the trigger, never falls
    within a step (``floor``), full once armed at the end of a step."""
    ramp = min(max((dd_eq - p["fed_trigger"]) / p["fed_ramp"], 0.0), 1.0)
    return max(floor, p["fed_put"] * max(fed_on, ramp))


def _survivor(u, a, k):
    """Share of a perp bucket liquidated once the adverse log move reaches ``u``."""
    z = k * u
    den = -2.0 * math.expm1(-a)
    if z <= a:
        return 4.0 * math.exp(-a) * math.sinh(0.5 * z) ** 2 / den
    return 1.0 - (math.exp(a - z) - math.exp(-a - z)) / den


def _perp_notionals(p):
    scale = p["leverage"] * p["channel_perps"]
    return ((scale * p["perp_long_btc"], scale * p["perp_long_alt"]),
            (scale * p["perp_short_btc"], scale * p["perp_short_alt"]))


def _perps(p, low, up):
    """Cumulative liquidated shares of long and short notional per crypto asset."""
    caps = (p["perp_cap_btc"], p["perp_cap_alt"])
    vols = (p["vol_btc"], p["vol_alt"])
    mm = p["maint_margin"]
    longs, shorts = [0.0, 0.0], [0.0, 0.0]
    for a in A2:
        k = math.sqrt(2.0 / p["perp_holding_days"]) / max(vols[a] / math.sqrt(DAYS_PER_YEAR),
                                                          MIN_DAILY_VOL)
        for b, wl, ws in zip(p["perp_leverage_buckets"], p["perp_long_weights"],
                             p["perp_short_weights"], strict=True):
            lev = min(b, caps[a])
            longs[a] += wl * _survivor(-low[a], k * -math.log1p(-(1.0 / lev - mm)), k)
            shorts[a] += ws * _survivor(up[a], k * math.log1p(1.0 / lev - mm), k)
    return longs, shorts


def _defi(p, dd):
    """Cumulative DeFi collateral sold per crypto asset ($)."""
    lev = p["leverage"]
    coll = (p["defi_collateral_btc"], p["defi_collateral_alt"])
    k = 1.0 + p["defi_selfref_share"] * p["defi_selfref_beta"]
    cf, s = p["defi_close_factor"], p["dispersion"]
    out = [0.0, 0.0]
    for a in A2:
        de = min(dd[a] * k, 1.0)
        for h, w in zip(p["defi_hf_buckets"], p["defi_hf_weights"], strict=True):
            inv_hf = lev / (lev + h - 1.0)
            debt = p["channel_defi"] * coll[a] * w * p["defi_liq_threshold"] * inv_hf
            sh = (cf * _share(de, 1.0 - inv_hf, s)
                  + (1.0 - cf) * _share(de, 1.0 - p["defi_full_hf"] * inv_hf, s))
            out[a] += sh * debt
        out[a] *= 1.0 + p["defi_bonus"]
    return out


def _treasury(p, dd):
    """Cumulative btc sold by treasury companies ($)."""
    tgt, tr = p["treasury_target"], 0.0
    for m, w in zip(p["treasury_ltv_buckets"], p["treasury_ltv_weights"], strict=True):
        hold = p["channel_treasury"] * p["treasury_btc"] * w
        ltv = p["treasury_ltv"] * p["leverage"] * m
        value = hold * (1.0 - dd[0])
        sale = min(max((ltv * hold - tgt * value) / (1.0 - tgt), 0.0), value)
        tr += _share(dd[0], 1.0 - ltv / p["treasury_covenant"], p["dispersion"]) * sale
    return tr


def _funds(p, dd):
    """Cumulative equity sales and crypto sales (btc, alt) of the leveraged funds ($)."""
    n = p["leverage"] * p["fund_crypto_book"]
    book = (n * p["fund_crypto_btc_share"], n * (1.0 - p["fund_crypto_btc_share"]))
    notional = book[0] + book[1]
    e = p["fund_capital"]
    margin_loss = dd[0] * book[0] + dd[1] * book[1]
    cash_call = max(margin_loss - p["fund_buffer"] * notional, 0.0)
    hold_eq = p["fund_eq_leverage"] * e
    eq_left = hold_eq * (1.0 - dd[2])
    margin_eq = min(p["channel_fund_margin"] * p["fund_eq_sale_share"] * cash_call, eq_left)
    assets0 = hold_eq + notional
    lam0 = assets0 / e
    loss = margin_loss + hold_eq * dd[2]
    assets, capital = assets0 - loss, e - loss
    lam = assets / max(capital, 1e-9 * e)
    trig = _share(lam / max(lam0, 1e-12) - 1.0, p["fund_max_ratio"] - 1.0, p["dispersion"])
    sale = min(max(assets - p["fund_target_ratio"] * lam0 * capital, 0.0), max(assets, 0.0))
    delever = p["channel_fund_delever"] * trig * sale
    cs_eq = min(delever, eq_left - margin_eq)
    left = (book[0] * (1.0 - dd[0]), book[1] * (1.0 - dd[1]))
    total_left = left[0] + left[1]
    cs_crypto = min(delever - cs_eq, total_left)
    tl = total_left if total_left > 0 else 1.0
    return margin_eq + cs_eq, [left[a] / tl * cs_crypto for a in A2]


def _bank_capital(p):
    return [p["bank_capital"] * w for w in p["bank_weights"]]


def _wholesale(p):
    return [p["bank_wholesale_share"] * (p["bank_leverage"] - 1.0) * k for k in _bank_capital(p)]


def _exposure(p):
    """Crypto collateral per bank at the open ($)."""
    lev = p["leverage"]
    floor = min(lev * p["bank_crypto_floor"], p["bank_crypto_cap"])
    return [p["channel_collateral"] * k * (floor + p["integration"] * lev
                                           * (m - p["bank_crypto_floor"]))
            for k, m in zip(_bank_capital(p), p["bank_crypto_max"], strict=True)]


def _banks(p, dd, col_prev, realised, run_prev, fed_share):
    """Banks at running drawdowns ``dd``: collateral share liquidated, per-bank crypto
    losses, losses, run intensities, and cumulative equities sold after the Fed."""
    s = p["dispersion"]
    g = p["bank_crypto_btc_share"]
    d_col = g * dd[0] + (1.0 - g) * dd[1]
    col = max(col_prev, _share(d_col, p["bank_margin_call"], s))
    unit_loss = realised + (1.0 - col_prev) * max(d_col - p["bank_haircut"], 0.0)
    forestall = 1.0 - fed_share
    fire = p["run_discount"] * (1.0 - p["bank_eq_sale_share"]) * forestall
    cryptos, losses, runs, equity = [], [], [], 0.0
    for k, x, f, r0 in zip(_bank_capital(p), _exposure(p), _wholesale(p), run_prev, strict=True):
        assets = p["bank_leverage"] * k
        hold_eq = p["bank_eq_share"] * assets
        liquid = p["bank_liquid_share"] * assets
        crypto = x * unit_loss
        market = crypto + hold_eq * dd[2]
        before = market + fire * max(r0 * p["run_share"] * f - liquid, 0.0)
        run = max(r0, p["channel_runs"] * _share(before / k, p["run_threshold"], s))
        excess = max(run * p["run_share"] * f - liquid, 0.0)
        loss = market + fire * excess
        delever = p["channel_bank_sales"] * p["bank_eq_sale_share"] * (p["bank_leverage"] - 1.0)
        gross = min(delever * loss + p["bank_eq_sale_share"] * excess, hold_eq * (1.0 - dd[2]))
        equity += gross * forestall
        cryptos.append(crypto)
        losses.append(loss)
        runs.append(run)
    return col, d_col, cryptos, losses, runs, equity


def _flows(p, st, x, floor):
    """Everything the sectors do at trial log prices ``x``: net forced sales per asset
    ``q`` ($, sell > 0) and the step's flows (targets are cumulative, flows this step)."""
    low = [min(st["low"][a], x[a]) for a in A3]
    up = [max(st["up"][a], x[a]) for a in A2]
    dd = [-math.expm1(v) for v in low]
    price = [math.exp(x[a]) for a in A2]
    longs, shorts = _perps(p, low, up)
    longs = [max(longs[a], st["long_sold"][a]) for a in A2]
    shorts = [max(shorts[a], st["short_sold"][a]) for a in A2]
    nl, ns = _perp_notionals(p)
    share = _fed_share(p, dd[2], st["fed_on"], floor)
    fund_eq, fund_crypto = _funds(p, dd)
    col, d_col, bc, bl, runs, bank_eq = _banks(p, dd, st["col_share"], st["col_realised"],
                                              st["runs"], share)
    dfi = _defi(p, dd)
    col_total = sum(_exposure(p))
    col_w = (p["bank_crypto_btc_share"], 1.0 - p["bank_crypto_btc_share"])
    f = {
        "long_share": longs, "short_share": shorts,
        "long_usd": [nl[a] * (longs[a] - st["long_sold"][a]) * price[a] for a in A2],
        "short_usd": [ns[a] * (shorts[a] - st["short_sold"][a]) * price[a] for a in A2],
        "defi": [max(dfi[a] - st["cum_defi"][a], 0.0) for a in A2],
        "treasury": max(_treasury(p, dd) - st["cum_treasury"], 0.0),
        "fund_eq": max(fund_eq - st["fund_eq"], 0.0),
        "fund_crypto": [max(fund_crypto[a] - st["fund_crypto"][a], 0.0) for a in A2],
        "bank_eq": max(bank_eq - st["bank_eq"], 0.0),
        "col_usd": [col_total * (col - st["col_share"]) * col_w[a] * price[a] for a in A2],
        "fed_share": share, "col_share": col, "d_col": d_col,
        "bank_crypto": bc, "bank_losses": bl, "run": runs,
    }
    crypto = [f["long_usd"][a] - f["short_usd"][a] + f["defi"][a] + f["fund_crypto"][a]
              + f["col_usd"][a] for a in A2]
    q = [crypto[0] + f["treasury"], crypto[1], (1.0 - share) * f["fund_eq"] + f["bank_eq"]]
    return q, f


def _impact(p, q, depth, memory):
    """Square-root impact of the remembered flow plus this step's ``q`` on the
    evaporated depth; the effective depth share."""
    d0 = (p["depth_btc"], p["depth_alt"], p["depth_eq"])
    imp, deff = [0.0] * 3, [0.0] * 3
    for a in A3:
        deff[a] = max(depth[a] * math.exp(-p["kappa"] * abs(q[a]) / d0[a]), p["depth_floor"])
        m = memory[a] + q[a]
        sign = (m > 0) - (m < 0)
        imp[a] = -p["impact_y"] * 0.01 * sign * math.sqrt(abs(m) / (d0[a] * deff[a]))
    return imp, deff


def _price(base, imp):
    return [min(max(base[a] + imp[a], X_MIN), X_MAX) for a in A3]


def p_step(params, substep, state_history, prev):
    """The whole step of one path: exogenous move, cascade to a fixed point, commit."""
    p, st = params, prev
    t, run = st["timestep"], st["run"]
    if NORMALS is None:  # a fresh worker process: the path travels in the environment
        _init_worker(os.environ["RADCAD_NORMALS"])
    z = NORMALS[run - 1, t]  # radCAD hands the policy the state of timestep t (0-based step)
    nu = len(z) - 3
    chol = _chol(p)
    chi2 = sum(v * v for v in z[3:])
    vols = _step_vols(p)
    jump = (p["jump_btc"], p["jump_alt"], p["jump_eq"]) if t == p["jump_step"] else (0, 0, 0)
    fund = [st["fund"][a] + sum(z[j] * chol[a][j] for j in A3) / math.sqrt(chi2 / nu)
            * math.sqrt((nu - 2.0) / nu) * vols[a] + jump[a] for a in A3]
    r, _ = _per_step(p)
    memory = [st["mem_perm"][a] + r * st["mem_trans"][a] for a in A3]
    # the within-step cascade: plain fixed-point iteration x <- F(x) (module docstring)
    tol = max(p["tol"], 8.0 * EPS64)
    x = _price(fund, _impact(p, [0.0] * 3, st["depth"], memory)[0])
    rounds, share, prev_res, capped = 0, 0.0, math.inf, False
    while True:
        q, f = _flows(p, st, x, share)
        share = f["fed_share"]
        imp, deff = _impact(p, q, st["depth"], memory)
        x_new = _price(fund, imp)
        res = max(abs(x_new[a] - x[a]) for a in A3)
        rounds += 1
        rho = 0.5 if math.isinf(prev_res) else (res / prev_res if prev_res > 0 else 0.0)
        bound = res * rho / max(1.0 - rho, 1e-30) if rho < 1.0 else math.inf
        if res == 0 or (res < tol and (bound < tol or res < 16.0 * EPS64)):
            break
        if rounds >= p["max_rounds"]:
            capped = True
            break
        x, prev_res = x_new, res
    x = x_new  # the step's flows are those at the last evaluated x, its price F(x)
    capped = capped or any(v <= X_MIN or v >= X_MAX for v in x)
    low = [min(st["low"][a], x[a]) for a in A3]
    peak = [max(st["peak"][a], x[a]) for a in A3]
    exo_peak = [max(st["exo_peak"][a], fund[a]) for a in A3]
    cap = _bank_capital(p)
    loss_unit = max(f["d_col"] - p["bank_haircut"], 0.0)
    th = p["perm_share"]
    _, g = _per_step(p)
    return {
        "fund": fund, "x": x,
        "mem_perm": [st["mem_perm"][a] + th * q[a] for a in A3],
        "mem_trans": [r * st["mem_trans"][a] + (1.0 - th) * q[a] for a in A3],
        "depth": [deff[a] + g * (1.0 - deff[a]) for a in A3],
        "low": low, "up": [max(st["up"][a], x[a]) for a in A2],
        "long_sold": f["long_share"], "short_sold": f["short_share"],
        "liq_long": st["liq_long"] + sum(f["long_usd"]),
        "liq_short": st["liq_short"] + sum(f["short_usd"]),
        "cum_defi": [st["cum_defi"][a] + f["defi"][a] for a in A2],
        "cum_treasury": st["cum_treasury"] + f["treasury"],
        "fund_eq": st["fund_eq"] + f["fund_eq"],
        "fund_crypto": [st["fund_crypto"][a] + f["fund_crypto"][a] for a in A2],
        "bank_eq": st["bank_eq"] + f["bank_eq"],
        "col_share": f["col_share"],
        "col_realised": st["col_realised"] + (f["col_share"] - st["col_share"]) * loss_unit,
        "col_sold": st["col_sold"] + sum(f["col_usd"]),
        "runs": f["run"],  # radCAD's own "run" is the Monte Carlo run
        "failed": [max(fl, float(v > (1.0 - p["bank_fail_floor"]) * c))
                   for fl, v, c in zip(st["failed"], f["bank_losses"], cap, strict=True)],
        "bank_loss": max(st["bank_loss"], sum(f["bank_losses"]) / sum(cap)),
        "bank_crypto_loss": max(st["bank_crypto_loss"], sum(f["bank_crypto"]) / sum(cap)),
        "fed_on": max(st["fed_on"], float(-math.expm1(low[2]) >= p["fed_trigger"])),
        "fed_bought": st["fed_bought"] + f["fed_share"] * f["fund_eq"],
        "peak": peak, "maxdd": [max(st["maxdd"][a], -math.expm1(x[a] - peak[a])) for a in A3],
        "exo_peak": exo_peak,
        "exo_maxdd": [max(st["exo_maxdd"][a], -math.expm1(fund[a] - exo_peak[a])) for a in A3],
        "trough_step": t + 1.0 if x[0] < st["low"][0] else st["trough_step"],
        "rounds_max": max(st["rounds_max"], rounds),
        "rounds_sum": st["rounds_sum"] + rounds,
        "capped": st["capped"] + float(capped),
    }


def _update(name, params, substep, state_history, prev, policy_input):
    """State-update function of variable ``name`` (bound with functools.partial: picklable)."""
    return name, policy_input[name]


def _suf(name):
    return functools.partial(_update, name)


STATE = {"fund": [0.0] * 3, "x": [0.0] * 3, "mem_perm": [0.0] * 3, "mem_trans": [0.0] * 3,
         "depth": [1.0] * 3, "low": [0.0] * 3, "up": [0.0] * 2, "long_sold": [0.0] * 2,
         "short_sold": [0.0] * 2, "liq_long": 0.0, "liq_short": 0.0, "cum_defi": [0.0] * 2,
         "cum_treasury": 0.0, "fund_eq": 0.0, "fund_crypto": [0.0] * 2, "bank_eq": 0.0,
         "col_share": 0.0, "col_realised": 0.0, "col_sold": 0.0, "runs": [0.0] * 8,
         "failed": [0.0] * 8, "bank_loss": 0.0, "bank_crypto_loss": 0.0, "fed_on": 0.0,
         "fed_bought": 0.0, "peak": [0.0] * 3, "maxdd": [0.0] * 3, "exo_peak": [0.0] * 3,
         "exo_maxdd": [0.0] * 3, "trough_step": 0.0, "rounds_max": 0, "rounds_sum": 0,
         "capped": 0.0}


def outputs(p, st, n_steps):
    """Per-path outputs (docs/model.md section 6) from the end-of-day state."""
    exo = st["exo_maxdd"][0]
    cap = _bank_capital(p)
    banks_failed = sum(fl * k for fl, k in zip(st["failed"], cap, strict=True)) / sum(cap)
    funding = _wholesale(p)
    total = sum(funding)
    ran = sum(r * p["run_share"] * f for r, f in zip(st["runs"], funding, strict=True))
    run_share = ran / total if total > 0 else 0.0
    slack = 1.0 - 1e-6
    systemic = (banks_failed >= slack * p["systemic_bank_share"]
                or st["maxdd"][2] >= p["systemic_eq_drawdown"]
                or run_share >= slack * p["systemic_run_share"])
    nl, ns = _perp_notionals(p)
    oi = p["leverage"] * (p["perp_long_btc"] + p["perp_long_alt"] + p["perp_short_btc"]
                          + p["perp_short_alt"])
    closed = sum(nl[a] * st["long_sold"][a] + ns[a] * st["short_sold"][a] for a in A2)
    return {
        "drawdown_btc": st["maxdd"][0], "drawdown_alt": st["maxdd"][1],
        "drawdown_eq": st["maxdd"][2], "exo_drawdown_btc": exo,
        "exo_drawdown_alt": st["exo_maxdd"][1], "exo_drawdown_eq": st["exo_maxdd"][2],
        "amplification": st["maxdd"][0] / exo if exo > 0 else 1.0,
        "liquidated_long": st["liq_long"], "liquidated_short": st["liq_short"],
        "defi_liquidated": sum(st["cum_defi"]), "treasury_sold": st["cum_treasury"],
        "fund_equity_sold": st["fund_eq"], "fund_crypto_sold": sum(st["fund_crypto"]),
        "collateral_liquidated": st["col_sold"], "bank_equity_sold": st["bank_eq"],
        "bank_loss": st["bank_loss"], "bank_crypto_loss": st["bank_crypto_loss"],
        "run_share": run_share, "banks_failed": banks_failed, "fed_fired": st["fed_on"],
        "fed_bought": st["fed_bought"], "cascade_rounds_max": float(st["rounds_max"]),
        "capped_steps": st["capped"] / n_steps,
        "oi_closed": closed / oi if oi > 0 else 0.0,
        "time_to_trough": st["trough_step"] * p["step_hours"],
        "systemic": float(systemic),
    }


def _init_worker(path):
    global NORMALS
    NORMALS = np.load(path, mmap_mode="r")


def main(argv: list[str]) -> None:
    from radcad import Backend, Engine, Experiment, Model, Simulation

    params_path, normals_path, out_path = argv[:3]
    processes = int(argv[argv.index("--processes") + 1]) if "--processes" in argv else 2
    cells = json.load(open(params_path))
    os.environ["RADCAD_NORMALS"] = normals_path
    _init_worker(normals_path)
    n_paths, n_steps = NORMALS.shape[:2]
    n_banks = len(cells[0]["bank_weights"])
    state = {**STATE, "runs": [0.0] * n_banks, "failed": [0.0] * n_banks}
    blocks = [{"policies": {"step": p_step}, "variables": {k: _suf(k) for k in state}}]
    sims = [Simulation(model=Model(initial_state=state, state_update_blocks=blocks,
                                   params={k: [v] for k, v in cell.items()}),
                       timesteps=n_steps, runs=n_paths) for cell in cells]
    exp = Experiment(sims)
    # options where radCAD reads them: Engine(...) builds its SimulationExecution from them at
    # construction (setting exp.engine.drop_substeps afterwards is ignored); deep copy off, as
    # a user who does not mutate the state would (radCAD's default pickles every substate)
    exp.engine = Engine(backend=Backend.MULTIPROCESSING, processes=processes,
                        deepcopy="--deepcopy" in argv, drop_substeps=True)
    t0 = time.perf_counter()
    exp.run()
    # the per-path outputs from each run's end-of-day state (in path order)
    finals = sorted((r for r in exp.results if r["timestep"] == n_steps),
                    key=lambda r: (r["simulation"], r["run"]))
    paths = [[outputs(cell, r, n_steps) for r in finals if r["simulation"] == i]
             for i, cell in enumerate(cells)]
    seconds = time.perf_counter() - t0
    names = list(paths[0][0])
    out = {"seconds": seconds, "cells": len(cells), "paths": n_paths, "steps": n_steps,
           "processes": processes,
           "mean_rounds_per_step": sum(r["rounds_sum"] for r in finals)
           / (len(finals) * n_steps),
           "outputs": {k: [[o[k] for o in cell] for cell in paths] for k in names}}
    json.dump(out, open(out_path, "w"))


if __name__ == "__main__":
    main(sys.argv[1:])
