"""The cascade model written the way radCAD users write one (run in its own venv).

Scalar state (one float per variable and asset), one policy per step that
computes the step's exogenous move and the within-step cascade in plain Python,
one state-update function per variable, one Monte Carlo run per path, radCAD's
multiprocessing backend. It is a scalar port of ``kernels/reference.py``'s
per-path logic and reads the same standard-normal draws (``normals[run, t]``).

This file runs under ``benchmarks/.venv-radcad`` (radcad pins numpy < 1.26.4, so
it cannot live in the project's lock); it imports nothing from the project.
Usage: ``python radcad_model.py PARAMS.json NORMALS.npy OUT.json [--processes N]``
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
A3 = (0, 1, 2)
NORMALS = None  # (n_paths, n_steps, 3 + t_dof) float64, loaded per process


def _share(d, thr, s):
    lo = thr * (1.0 - s)
    w = max(2.0 * s * thr, 1e-12)
    return min(max((d - lo) / w, 0.0), 1.0)


def _chol(p):
    c, r = p["correlation"], p["rho_ca"]
    ae = r * c if math.isnan(p["corr_alt_eq"]) else p["corr_alt_eq"]
    a, b = r, c
    l11 = math.sqrt(max(1.0 - a * a, 0.0))
    l21 = (ae - a * b) / l11 if l11 > 0 else 0.0
    l22 = math.sqrt(max(1.0 - b * b - l21 * l21, 0.0))
    return ((1.0, 0.0, 0.0), (a, l11, 0.0), (b, l21, l22))


def _fed_share(p, dd_eq, fed_on, floor):
    """Fed's share of equity flow: ramps over ``fed_ramp`` past the trigger, never falls
    within a step (``floor``), full once armed at the end of a step."""
    ramp = min(max((dd_eq - p["fed_trigger"]) / p["fed_ramp"], 0.0), 1.0)
    return max(floor, p["fed_put"] * max(fed_on, ramp))


def _targets(p, dd, rise, share):
    """Cumulative targets of every sector at running drawdowns ``dd`` (3) and ``rise`` (2)."""
    s = p["entry_dispersion"]
    lev = p["leverage"]
    caps = (p["perp_cap_btc"], p["perp_cap_alt"])
    nl = (p["perp_long_btc"], p["perp_long_alt"])
    ns = (p["perp_short_btc"], p["perp_short_alt"])
    lt, st, dfi = [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]
    coll = (p["defi_collateral_btc"], p["defi_collateral_alt"])
    k = 1.0 + p["defi_selfref_share"] * p["defi_selfref_beta"]
    for a in (0, 1):
        for b, wl, ws in zip(p["perp_leverage_buckets"], p["perp_long_weights"],
                             p["perp_short_weights"], strict=True):
            thr = 1.0 / min(b, caps[a]) - p["maint_margin"]
            lt[a] += wl * _share(dd[a], thr, s)
            st[a] += ws * _share(rise[a], thr, s)
        lt[a] *= lev * nl[a]
        st[a] *= lev * ns[a]
        de = min(dd[a] * k, 1.0)
        for h, w in zip(p["defi_hf_buckets"], p["defi_hf_weights"], strict=True):
            inv_hf = lev / (lev + h - 1.0)
            debt = coll[a] * w * p["defi_liq_threshold"] * inv_hf
            sh = (p["defi_close_factor"] * _share(de, 1.0 - inv_hf, s)
                  + (1.0 - p["defi_close_factor"])
                  * _share(de, 1.0 - p["defi_full_hf"] * inv_hf, s))
            dfi[a] += sh * debt
        dfi[a] *= 1.0 + p["defi_bonus"]
    tr = 0.0
    for m, w in zip(p["treasury_ltv_buckets"], p["treasury_ltv_weights"], strict=True):
        hold = p["treasury_btc"] * w
        ltv = p["treasury_ltv"] * lev * m
        trig = max(1.0 - ltv / p["treasury_covenant"], 1e-3)
        value = hold * (1.0 - dd[0])
        sale = (ltv * hold - p["treasury_target"] * value) / (1.0 - p["treasury_target"])
        tr += _share(dd[0], trig, s) * min(max(sale, 0.0), value)
    lam = 1.0 + lev * (p["fund_leverage"] - 1.0)
    eqf = p["fund_capital"]
    hold = [lam * eqf * p[f"fund_w_{x}"] for x in ("btc", "alt", "eq")]
    loss = sum(d * h for d, h in zip(dd, hold, strict=True))
    assets, capital = lam * eqf - loss, eqf - loss
    lev_now = assets / max(capital, 1e-9 * eqf)
    trig = _share(lev_now / lam - 1.0, p["fund_max_ratio"] - 1.0, s)
    total = trig * min(max(assets - p["fund_target_ratio"] * lam * capital, 0.0), assets)
    s_eq = min(total, hold[2])
    s_btc = min(total - s_eq, hold[0])
    fund = [s_btc, total - s_eq - s_btc, s_eq]
    bank_total, bank_crypto, bank_sale = _banks(p, dd)
    return lt, st, dfi, tr, fund, bank_sale * (1.0 - share), bank_total, bank_crypto


def _banks(p, dd):
    lam = 1.0 + p["leverage"] * (p["bank_leverage"] - 1.0)
    dd_col = p["bank_crypto_btc_share"] * dd[0] + (1.0 - p["bank_crypto_btc_share"]) * dd[1]
    totals, cryptos, sale = [], [], 0.0
    for w, cm in zip(p["bank_weights"], p["bank_crypto_max"], strict=True):
        cap = p["bank_capital"] * w
        eq_hold = p["bank_eq_share"] * lam * cap
        crypto = max(dd_col - p["bank_haircut"], 0.0) * p["integration"] * cm * cap
        total = crypto + dd[2] * eq_hold
        totals.append(total)
        cryptos.append(crypto)
        sale += min((lam - 1.0) * total, eq_hold)
    return totals, cryptos, sale


def _impact(p, q, depth):
    d0 = (p["depth_btc"], p["depth_alt"], p["depth_eq"])
    imp, deff = [0.0] * 3, [0.0] * 3
    for a in A3:
        deff[a] = max(depth[a] * math.exp(-p["kappa"] * abs(q[a]) / d0[a]), p["depth_floor"])
        sign = (q[a] > 0) - (q[a] < 0)
        imp[a] = -p["impact_y"] * 0.01 * sign * math.sqrt(abs(q[a]) / (d0[a] * deff[a]))
    return imp, deff


def p_step(params, substep, state_history, prev):
    """The whole step of one path: exogenous move, cascade to a fixed point, commit."""
    p, st = params, prev
    t, run = st["timestep"], st["run"]
    if NORMALS is None:  # a fresh worker process: the path travels in the environment
        _init_worker(os.environ["RADCAD_NORMALS"])
    z = NORMALS[run - 1, t]  # radCAD hands the policy the state of timestep t (0-based step)
    nu = len(z) - 3
    chol = _chol(p)
    scale = math.sqrt(nu / sum(v * v for v in z[3:])) * math.sqrt((nu - 2.0) / nu)
    sig = math.sqrt(p["step_hours"] / HOURS_PER_YEAR)
    vols = (p["vol_btc"], p["vol_alt"], p["vol_eq"])
    jump = (p["jump_btc"], p["jump_alt"], p["jump_eq"]) if t == p["jump_step"] else (0, 0, 0)
    fund = [st["fund"][a] + sum(chol[a][j] * z[j] for j in A3) * scale * vols[a] * sig + jump[a]
            for a in A3]
    base = [fund[a] + st["perm"][a] + p["resilience"] * st["trans"][a] for a in A3]
    x, rounds, share = list(base), 0, 0.0
    while True:
        dd = [max(st["dd"][a], 1.0 - math.exp(x[a])) for a in A3]
        rise = [max(st["rise"][a], math.exp(x[a]) - 1.0) for a in (0, 1)]
        share = _fed_share(p, dd[2], st["fed_on"], share)
        lt, sh, dfi, tr, fu, bk, _, _ = _targets(p, dd, rise, share)
        fl = [max(lt[a] - st["cum_long"][a], 0.0) for a in (0, 1)]
        fs = [max(sh[a] - st["cum_short"][a], 0.0) for a in (0, 1)]
        fd = [max(dfi[a] - st["cum_defi"][a], 0.0) for a in (0, 1)]
        ft = max(tr - st["cum_treasury"], 0.0)
        ff = [max(fu[a] - st["cum_fund"][a], 0.0) for a in A3]
        fb = max(bk - st["cum_bank"], 0.0)
        eq_gross = ff[2] + fb
        q = [fl[0] - fs[0] + fd[0] + ff[0] + ft, fl[1] - fs[1] + fd[1] + ff[1],
             (1.0 - share) * eq_gross]
        imp, deff = _impact(p, q, st["depth"])
        x_new = [base[a] + imp[a] for a in A3]
        diff = max(abs(x_new[a] - x[a]) for a in A3)
        x, rounds = x_new, rounds + 1
        if diff < max(p["tol"], 1e-15) or rounds >= p["max_rounds"]:
            break
    dd = [max(st["dd"][a], 1.0 - math.exp(x[a])) for a in A3]
    _, _, _, _, _, _, bt, bc = _targets(p, dd, rise, share)
    cap = [p["bank_capital"] * w for w in p["bank_weights"]]
    peak = [max(st["peak"][a], x[a]) for a in A3]
    exo_peak = [max(st["exo_peak"][a], fund[a]) for a in A3]
    return {
        "fund": fund, "x": x,
        "perm": [st["perm"][a] + p["perm_share"] * imp[a] for a in A3],
        "trans": [p["resilience"] * st["trans"][a] + (1 - p["perm_share"]) * imp[a] for a in A3],
        "depth": [deff[a] + p["depth_recovery"] * (1.0 - deff[a]) for a in A3],
        "dd": dd, "rise": [max(st["rise"][a], math.exp(x[a]) - 1.0) for a in (0, 1)],
        "cum_long": [st["cum_long"][a] + fl[a] for a in (0, 1)],
        "cum_short": [st["cum_short"][a] + fs[a] for a in (0, 1)],
        "cum_defi": [st["cum_defi"][a] + fd[a] for a in (0, 1)],
        "cum_treasury": st["cum_treasury"] + ft,
        "cum_fund": [st["cum_fund"][a] + ff[a] for a in A3],
        "cum_bank": st["cum_bank"] + fb,
        "fed_bought": st["fed_bought"] + share * eq_gross,
        "fed_on": max(st["fed_on"], float(dd[2] >= p["fed_trigger"])),
        "banks_failed": sum(max(f, float(v > (1 - p["bank_fail_floor"]) * c))
                            for f, v, c in zip(st["failed"], bt, cap, strict=True)) / len(cap),
        "failed": [max(f, float(v > (1 - p["bank_fail_floor"]) * c))
                   for f, v, c in zip(st["failed"], bt, cap, strict=True)],
        "bank_loss": max(st["bank_loss"], sum(bt) / sum(cap)),
        "bank_crypto_loss": max(st["bank_crypto_loss"], sum(bc) / sum(cap)),
        "peak": peak, "maxdd": [max(st["maxdd"][a], 1 - math.exp(x[a] - peak[a])) for a in A3],
        "exo_peak": exo_peak,
        "exo_maxdd": [max(st["exo_maxdd"][a], 1 - math.exp(fund[a] - exo_peak[a])) for a in A3],
        "rounds_max": max(st["rounds_max"], rounds),
    }


def _update(name, params, substep, state_history, prev, policy_input):
    """State-update function of variable ``name`` (bound with functools.partial: picklable)."""
    return name, policy_input[name]


def _suf(name):
    return functools.partial(_update, name)


STATE = {"fund": [0.0] * 3, "x": [0.0] * 3, "perm": [0.0] * 3, "trans": [0.0] * 3,
         "depth": [1.0] * 3, "dd": [0.0] * 3, "rise": [0.0] * 2, "cum_long": [0.0] * 2,
         "cum_short": [0.0] * 2, "cum_defi": [0.0] * 2, "cum_treasury": 0.0,
         "cum_fund": [0.0] * 3, "cum_bank": 0.0, "fed_bought": 0.0, "fed_on": 0.0,
         "banks_failed": 0.0, "failed": [0.0] * 8, "bank_loss": 0.0, "bank_crypto_loss": 0.0,
         "peak": [0.0] * 3, "maxdd": [0.0] * 3, "exo_peak": [0.0] * 3, "exo_maxdd": [0.0] * 3,
         "rounds_max": 0}


def _init_worker(path):
    global NORMALS
    NORMALS = np.load(path, mmap_mode="r")


def main(argv: list[str]) -> None:
    from radcad import Backend, Experiment, Model, Simulation

    params_path, normals_path, out_path = argv[:3]
    processes = int(argv[argv.index("--processes") + 1]) if "--processes" in argv else 2
    cells = json.load(open(params_path))
    os.environ["RADCAD_NORMALS"] = normals_path
    _init_worker(normals_path)
    n_paths, n_steps = NORMALS.shape[:2]
    state = {**STATE, "failed": [0.0] * len(cells[0]["bank_weights"])}
    blocks = [{"policies": {"step": p_step}, "variables": {k: _suf(k) for k in state}}]
    sims = [Simulation(model=Model(initial_state=state, state_update_blocks=blocks,
                                   params={k: [v] for k, v in cell.items()}),
                       timesteps=n_steps, runs=n_paths) for cell in cells]
    exp = Experiment(sims)
    exp.engine.backend = Backend.MULTIPROCESSING
    exp.engine.processes = processes
    exp.engine.drop_substeps = True
    t0 = time.perf_counter()
    exp.run()
    seconds = time.perf_counter() - t0
    finals = [r for r in exp.results if r["timestep"] == n_steps]
    out = {"seconds": seconds, "cells": len(cells), "paths": n_paths, "steps": n_steps,
           "processes": processes,
           "drawdown_btc": [[r["maxdd"][0] for r in finals if r["simulation"] == i]
                            for i in range(len(cells))]}
    json.dump(out, open(out_path, "w"))


if __name__ == "__main__":
    main(sys.argv[1:])
