"""Calibration episodes (docs/calibration.md): conf/episode/NAME.yaml -> farm.plan.episodes,
the implausibility measure, and `farm run episode=NAME` printing the episode's table.

Written from the specification: I = |mean(sim) - obs| / sqrt(sd^2 + var(sim)/n + var_model),
for a lower bound max(0, obs - mean(sim)) on top; a non-finite simulation is inf; a bad
episode exits 2 with one line naming the key.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from farm.cli import main
from farm.errors import ConfigError
from farm.plan.compose import compose_config
from farm.plan.convert import make_plan
from farm.plan.episodes import (
    QUANTITIES,
    Episode,
    Target,
    episode_from,
    implausibility,
    list_episodes,
    per_path_quantities,
)
from kernels.paramspec import SPECS

REPO = Path(__file__).resolve().parents[2]
SHIPPED = ("oct2025", "nov2025", "dec2025", "may2021", "mar2020", "calm_oct2025",
           "calm_late2025")


# ---------------------------------------------------------------- implausibility by hand


def test_implausibility_of_a_value_target_by_hand():
    sim = np.array([1.0, 2.0, 3.0, 6.0])  # mean 3, population variance 3.5
    t = Target("x", "drawdown_btc", observed=5.0, sd=1.0, kind="value")
    # |3 - 5| / sqrt(1 + 3.5 / 4) = 2 / sqrt(1.875)
    assert implausibility(sim, t) == pytest.approx(2 / math.sqrt(1.875), rel=1e-12)
    # the model-discrepancy variance adds to the denominator
    assert implausibility(sim, t, var_model=0.125) == pytest.approx(2 / math.sqrt(2.0))
    # two-sided: a simulation above the figure by as much is as implausible
    above = Target("x", "drawdown_btc", observed=1.0, sd=1.0, kind="value")
    assert implausibility(sim, above) == pytest.approx(2 / math.sqrt(1.875), rel=1e-12)


def test_implausibility_of_a_lower_bound_counts_only_a_simulation_below_it():
    sim = np.array([1.0, 2.0, 3.0, 6.0])
    below = Target("liq", "liquidations_usd", observed=5.0, sd=1.0, kind="lower_bound")
    assert implausibility(sim, below) == pytest.approx(2 / math.sqrt(1.875), rel=1e-12)
    over = Target("liq", "liquidations_usd", observed=1.0, sd=1.0, kind="lower_bound")
    assert implausibility(sim, over) == 0.0  # the truth is at least 1: 3 is fine


def test_the_monte_carlo_variance_shrinks_with_the_paths():
    t = Target("x", "drawdown_btc", observed=0.0, sd=0.1, kind="value")
    few = np.array([0.0, 2.0])  # mean 1, var 1, n 2: 1 / sqrt(0.01 + 0.5)
    many = np.tile(few, 500)  # mean 1, var 1, n 1000: 1 / sqrt(0.01 + 0.001)
    assert implausibility(few, t) == pytest.approx(1 / math.sqrt(0.51))
    assert implausibility(many, t) == pytest.approx(1 / math.sqrt(0.011))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_simulation_is_infinitely_implausible_never_nan(bad):
    t = Target("x", "drawdown_btc", observed=0.1, sd=0.01, kind="value")
    assert implausibility(np.array([0.1, bad]), t) == math.inf
    assert implausibility(np.array([]), t) == math.inf
    lb = Target("x", "drawdown_btc", observed=0.1, sd=0.01, kind="lower_bound")
    assert implausibility(np.array([0.5, bad]), lb) == math.inf


def test_var_model_must_be_finite_and_not_negative():
    t = Target("x", "drawdown_btc", observed=0.1, sd=0.01, kind="value")
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="var_model"):
            implausibility(np.array([0.1]), t, var_model=bad)


def test_per_path_quantities_from_the_kernel_outputs():
    paths = {"liquidated_long": np.array([3.0, 0.0]), "liquidated_short": np.array([1.0, 0.0]),
             "drawdown_btc": np.array([0.1, 0.2]), "drawdown_alt": np.array([0.3, 0.4]),
             "drawdown_eq": np.array([0.01, 0.02]), "oi_closed": np.array([0.05, 0.0])}
    q = per_path_quantities(paths)
    assert set(q) == set(QUANTITIES)
    np.testing.assert_array_equal(q["liquidations_usd"], [4.0, 0.0])
    np.testing.assert_array_equal(q["long_share"], [0.75, 0.0])  # nothing liquidated: 0
    np.testing.assert_array_equal(q["drawdown_alt"], [0.3, 0.4])
    assert all(v.dtype == np.float64 for v in q.values())


# ---------------------------------------------------------------- the shipped episodes


def test_every_shipped_episode_is_listed():
    assert set(SHIPPED) <= set(list_episodes())
    assert all((REPO / "conf" / "episode" / f"{n}.yaml").is_file() for n in list_episodes())


def test_every_shipped_episode_is_documented_with_its_table():
    doc = (REPO / "docs" / "calibration.md").read_text()
    for name in list_episodes():
        assert f"**`{name}`**" in doc, name  # its sources, in words
        assert f"episode {name} (" in doc, name  # its measured table


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_episode_loads_validates_and_plans_one_cell(name):
    cfg = compose_config([f"episode={name}"])
    ep = episode_from(cfg)
    assert isinstance(ep, Episode) and ep.name == name and ep.date and ep.description
    assert ep.targets and all(t.quantity in QUANTITIES and t.sd > 0 for t in ep.targets)
    assert set(ep.model) <= set(SPECS)
    plan = make_plan(cfg)
    assert plan.episode == ep
    assert plan.design.n_cells == 1 and plan.store.paths and plan.sweep.paths == 2048
    for key, value in ep.model.items():  # the episode's values over the composed model
        assert float(getattr(plan.model, key)) == pytest.approx(value)


def test_the_calm_control_is_oct2025_without_the_trigger():
    oct_, calm = (make_plan(compose_config([f"episode={n}"])).model
                  for n in ("oct2025", "calm_oct2025"))
    assert float(calm.jump_btc) == float(calm.jump_alt) == float(calm.jump_eq) == 0.0
    expected = oct_._replace(jump_btc=0.0, jump_alt=0.0, jump_eq=0.0)._asdict()
    for key, value in calm._asdict().items():
        np.testing.assert_array_equal(np.asarray(value), np.asarray(expected[key]), err_msg=key)


def test_without_an_episode_nothing_changes_and_a_user_model_override_wins():
    assert make_plan(compose_config(["sweep=single"])).episode is None
    plan = make_plan(compose_config(["episode=oct2025", "model.leverage=2", "sweep.paths=64"]))
    assert float(plan.model.leverage) == 2.0 and plan.episode.model["leverage"] == 2.0
    assert plan.sweep.paths == 64


# ---------------------------------------------------------------- bad episodes exit 2


@pytest.mark.parametrize("override, key", [
    ("~episode.targets.liquidations.sd", "episode.targets.liquidations.sd"),
    ("episode.targets.liquidations.sd=0", "episode.targets.liquidations.sd"),
    ("episode.targets.liquidations.sd=-0.1", "episode.targets.liquidations.sd"),
    ("episode.targets.liquidations.quantity=liquidations", "episode.targets.liquidations.quantity"),
    ("episode.targets.liquidations.kind=upper_bound", "episode.targets.liquidations.kind"),
    ("episode.targets.liquidations.observed=nan", "episode.targets.liquidations.observed"),
    ("+episode.targets.liquidations.unit=USD", "episode.targets.liquidations.unit"),
    ("+episode.model.levrage=1", "episode.model.levrage"),
    ("+episode.model.perp_long_weights=[1]", "episode.model.perp_long_weights"),
    ("episode.model.leverage=20", "episode.model.leverage"),
    ("~episode.date", "episode.date"),
    ("+episode.colour=red", "episode.colour"),
    ("sweep=smoke", "sweep.axes"),
    ("store.paths=false", "store.paths"),
])
def test_a_bad_episode_exits_2_in_one_line_naming_the_key(override, key, tmp_path, capsys):
    code = main(["run", "--dry-run", "episode=calm_late2025", f"store.url={tmp_path}/x.zarr",
                 override])
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert key in err, err
    assert not (tmp_path / "x.zarr").exists()


def test_episode_from_names_the_key_of_a_missing_sd():
    cfg = {"episode": {"name": "t", "date": "d", "description": "x", "model": {},
                       "targets": {"liq": {"quantity": "liquidations_usd", "observed": 1.0,
                                           "kind": "value"}}}}
    with pytest.raises(ConfigError, match=r"episode\.targets\.liq\.sd") as info:
        episode_from(cfg)
    assert info.value.key == "episode.targets.liq.sd"
    with pytest.raises(ConfigError, match="episode"):
        episode_from({"episode": None})


def test_an_unknown_episode_exits_2_naming_the_group(capsys):
    code = main(["run", "--dry-run", "episode=oct1987"])
    _, err = capsys.readouterr()
    assert code == 2 and "episode" in err and "oct2025" in err, err


# ---------------------------------------------------------------- farm run episode=NAME


def test_farm_run_episode_prints_the_table(tmp_path, capsys, ray_local):
    url = tmp_path / "calm.zarr"
    assert main(["run", "--no-progress", "episode=calm_late2025", "sweep.paths=64",
                 f"store.url={url}"]) == 0
    out = capsys.readouterr().out
    assert "episode calm_late2025" in out and "64 paths, seed 0" in out, out
    table = out[out.index("episode calm_late2025"):].splitlines()
    header = table[1]
    for col in ("target", "kind", "observed +- sd", "simulated median [5 %, 95 %]", "I",
                "verdict"):
        assert col in header, header
    rows = {line.split()[0]: line for line in table[2:] if line.strip()}
    assert {"liquidations", "btc_fall"} <= set(rows), out
    assert "$0.65 bn +- $0.35 bn" in rows["liquidations"]
    assert "plausible" in rows["btc_fall"] or "IMPLAUSIBLE" in rows["btc_fall"]
    assert "max I = " in out
    # the printed I is the one computed from the cube's per-path values
    import xarray as xr

    ds = xr.open_zarr(str(url))
    sim = per_path_quantities({"drawdown_btc": ds["drawdown_btc_paths"].values[0]})
    expected = implausibility(sim["drawdown_btc"],
                              Target("btc_fall", "drawdown_btc", 0.03, 0.015, "value"))
    assert f"{expected:.2f}" in rows["btc_fall"].split()
