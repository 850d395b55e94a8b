"""farm.plan: Hydra composition, validation errors, config hash, model yaml."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest
from omegaconf import OmegaConf, open_dict

from farm.errors import ConfigError
from farm.plan.compose import compose_config
from farm.plan.convert import make_plan, sweep_spec
from farm.plan.design import make_design
from farm.plan.identity import config_hash, to_yaml
from kernels.params import ModelParams, baseline, make_params, oct2025


@functools.lru_cache(maxsize=64)
def _composed(*overrides: str):
    return compose_config(list(overrides))


def cfg_of(*overrides: str):
    """A composed config (cached; a copy, so tests may mutate it)."""
    return _composed(*overrides).copy()


def changed(base: tuple[str, ...], **changes):
    """A cached composed config with dotted keys (``__`` for ``.``) set directly.

    Cheaper than composing again; ``None`` deletes the key. Used for checks
    that happen after composition (validate, config_hash).
    """
    cfg = cfg_of(*base)
    for dotted, value in changes.items():
        key = dotted.replace("__", ".")
        parent, _, leaf = key.rpartition(".")
        node = OmegaConf.select(cfg, parent) if parent else cfg
        with open_dict(node):
            if value is None:
                del node[leaf]
            else:
                node[leaf] = value
    return cfg


def validate_error(base: tuple[str, ...] = (), **changes) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        make_plan(changed(base, **changes))
    return info.value


def error_of(*overrides: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        cfg = compose_config(list(overrides))
        make_plan(cfg)
    return info.value


# ---------------------------------------------------------------- composition


@pytest.mark.parametrize("sweep", ["smoke", "default", "single", "lhs", "sobol"])
def test_each_sweep_composes_and_validates(sweep):
    cfg = cfg_of(f"sweep={sweep}")
    make_plan(cfg)
    assert cfg.name == f"sweep-{sweep}"
    assert cfg.store.url == f"results/sweep-{sweep}.zarr"
    assert cfg.sweep.paths >= 1 and cfg.sweep.steps >= 1


def test_default_sweep_is_the_card_grid():
    cfg = cfg_of()
    assert list(cfg.sweep.axes) == ["leverage", "correlation", "fed_put", "integration"]
    assert make_design(sweep_spec(cfg)).n_cells == 16 * 5 * 3 * 6
    # 640 paths: the Monte Carlo standard error of every probability is <= 0.02
    assert (cfg.sweep.paths, cfg.sweep.steps, cfg.sweep.seeding) == (640, 96, "common")
    assert (0.25 / cfg.sweep.paths) ** 0.5 <= 0.02
    assert cfg.runtime.block_cells == 0 and cfg.runtime.retries == 3  # 0: automatic
    assert make_design(sweep_spec(cfg)).chunks == (1, 5, 3, 6)  # <= 128 cells per block
    assert cfg.runtime.address is None and cfg.store.paths is False


def test_smoke_is_a_few_dozen_cells_over_the_card_axes():
    d = make_design(sweep_spec(cfg_of("sweep=smoke")))
    assert set(d.axes) == {"leverage", "correlation", "fed_put", "integration"}
    assert 12 <= d.n_cells <= 60


def test_single_has_no_axes_and_keeps_model_values():
    cfg = cfg_of("sweep=single", "model=oct2025", "model.kappa=0.2")
    assert dict(cfg.sweep.axes) == {}
    assert cfg.model.correlation == 0.8 and cfg.model.kappa == 0.2
    assert make_design(sweep_spec(cfg)).n_cells == 1


@pytest.mark.parametrize("name", ["oct2025_stress", "integration_frontier", "fed_put_study"])
def test_each_experiment_composes_and_validates(name):
    cfg = cfg_of(f"experiment={name}")
    make_plan(cfg)
    assert cfg.name == name.replace("_", "-")
    assert cfg.store.url == f"results/{cfg.name}.zarr"
    assert len(cfg.sweep.axes) >= 2


def test_experiment_sets_its_model():
    assert cfg_of("+experiment=fed_put_study").name == "fed-put-study"  # + also accepted
    assert cfg_of("experiment=oct2025_stress").model.correlation == 0.8
    assert cfg_of("experiment=integration_frontier").model.correlation == 0.5


def test_store_and_runtime_groups(monkeypatch):
    monkeypatch.setenv("FARM_S3_BUCKET", "my-bucket")
    monkeypatch.setenv("FARM_S3_ENDPOINT_URL", "http://127.0.0.1:5000")
    cfg = compose_config(["store=s3", "sweep=smoke"])
    assert cfg.store.url == "s3://my-bucket/sweep-smoke.zarr"
    assert cfg.store.endpoint_url == "http://127.0.0.1:5000"
    monkeypatch.delenv("FARM_S3_BUCKET")
    monkeypatch.delenv("FARM_S3_ENDPOINT_URL")
    cfg = compose_config(["store=s3", "runtime=cluster"])
    assert cfg.store.url == "s3://farm-results/sweep-default.zarr"
    assert cfg.store.endpoint_url is None
    assert cfg.runtime.address == "auto"
    assert compose_config(["name=mine"]).store.url == "results/mine.zarr"


def test_documented_overrides():
    cfg = cfg_of("model=oct2025", "model.leverage=1.5", "sweep.axes.leverage=[0,1,2]",
                 "sweep.paths=32", "sweep.steps=48", "seed=7", "store.url=/tmp/x.zarr",
                 "runtime.workers=2", "runtime.block_cells=16")
    make_plan(cfg)
    assert list(cfg.sweep.axes.leverage) == [0, 1, 2]
    assert (cfg.sweep.paths, cfg.sweep.steps, cfg.seed) == (32, 48, 7)
    assert (cfg.runtime.workers, cfg.runtime.block_cells) == (2, 16)
    assert cfg.store.url == "/tmp/x.zarr"


def test_a_fifth_axis_needs_no_plus():
    cfg = cfg_of("sweep.axes.depth_floor=[0.05,0.1]")
    make_plan(cfg)
    assert list(cfg.sweep.axes)[-1] == "depth_floor"


def test_whole_axes_override_replaces_the_axes():
    cfg = cfg_of("sweep.axes={leverage:[0,1],fed_put:[0,1]}", "sweep.axes.integration=[0,1]",
                 "~sweep.axes.fed_put")
    assert OmegaConf.to_container(cfg.sweep.axes) == {"leverage": [0, 1], "integration": [0, 1]}
    make_plan(cfg)
    assert make_design(sweep_spec(cfg)).shape == (2, 2)


@pytest.mark.parametrize("preset,factory", [("baseline", baseline), ("oct2025", oct2025)])
def test_model_yaml_equals_kernel_defaults(preset, factory):
    cfg = cfg_of(f"model={preset}")
    values = OmegaConf.to_container(cfg.model)
    assert values.pop("t_dof") == 4
    assert list(values) == list(ModelParams._fields), "conf/model misses or reorders fields"
    got, want = make_params(values), factory()
    for name in ModelParams._fields:
        np.testing.assert_array_equal(np.asarray(getattr(got, name)),
                                      np.asarray(getattr(want, name)), err_msg=name)


def test_make_plan_validates_once_into_frozen_values():
    plan = make_plan(compose_config(["sweep=smoke"]))
    assert plan.name == "sweep-smoke" and plan.design.n_cells == 24
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.name = "x"  # type: ignore[misc]
    with pytest.raises(ConfigError):
        make_plan(compose_config(["sweep.paths=0"]))


def test_to_yaml_round_trips():
    cfg = cfg_of("sweep=smoke")
    again = OmegaConf.create(to_yaml(cfg))
    assert OmegaConf.to_yaml(again) == to_yaml(cfg)


# ---------------------------------------------------------------- errors

COMPOSE_ERRORS = [
    (["model.not_a_param=1"], "model.not_a_param"),
    (["sweep.bogus=1"], "sweep.bogus"),
    (["sweep.paths=abc"], "sweep.paths"),
    (["store.paths=maybe"], "store.paths"),
    (["model.kappa=[1,2]"], "model.kappa"),
    (["model.perp_long_weights=[a]"], "model.perp_long_weights[0]"),
    (["model=nope"], "model"),
    (["experiment=nope"], "experiment"),
    (["sweep.axes.leverage=range(0,3)"], "sweep.axes.leverage"),
    (["sweep.axes.leverage=[]"], "sweep.axes.leverage"),
    (["sweep.axes.leverage=[0.5,1,0.5]"], "sweep.axes.leverage"),
    (["sweep.axes.not_a_param=[1,2]"], "sweep.axes.not_a_param"),
    (["model.leverage=-1"], "model.leverage"),
]


@pytest.mark.parametrize("overrides,key", COMPOSE_ERRORS,
                         ids=[" ".join(o) for o, _ in COMPOSE_ERRORS])
def test_override_errors_name_the_key(overrides, key):
    err = error_of(*overrides)
    assert isinstance(err, ValueError)
    assert err.key == key
    msg = str(err)
    assert key in msg and "allowed" in msg and "\n" not in msg
    assert err.allowed


GRID, LHS, SOBOL = ("sweep=smoke",), ("sweep=lhs",), ("sweep=sobol",)
VALIDATE_ERRORS = [
    (GRID, {"model__vol_btc": -0.5}, "model.vol_btc"),
    (GRID, {"model__t_dof": 2}, "model.t_dof"),
    (GRID, {"model__perp_long_weights": [0.5, 0.2, 0.1, 0.05, 0.05, 0.05, 0.02, 0.02]},
     "model.perp_long_weights"),
    (GRID, {"model__fund_capital": 0.0}, "model.fund_capital"),
    (GRID, {"model__capped_limit": 1.5}, "model.capped_limit"),
    (GRID, {"model__leverage": 5.0}, "model.leverage"),  # treasury covenant breach
    (GRID, {"sweep__axes__leverage": [1.0, 5.0]}, "sweep.axes.leverage"),  # covenant
    (GRID, {"sweep__axes__leverage": 1.0}, "sweep.axes.leverage"),
    (GRID, {"sweep__axes__bank_weights": [1.0, 2.0]}, "sweep.axes.bank_weights"),
    (GRID, {"sweep__axes__t_dof": [3, 4]}, "sweep.axes.t_dof"),
    (GRID, {"sweep__axes__correlation": [0.5, 1.5]}, "sweep.axes.correlation"),
    (GRID, {"sweep__axes__leverage": [0.0, "x"]}, "sweep.axes.leverage"),
    (LHS, {"sweep__axes__leverage": [3.0, 0.0]}, "sweep.axes.leverage"),
    (LHS, {"sweep__axes__leverage": [0.0, 1.0, 2.0]}, "sweep.axes.leverage"),
    (SOBOL, {"sweep__axes__fed_put": [0.0, 2.0]}, "sweep.axes.fed_put"),
    (LHS, {"sweep__n_samples": 0}, "sweep.n_samples"),
    (LHS, {"sweep__axes": {}}, "sweep.axes"),
    (GRID, {"sweep__paths": 0}, "sweep.paths"),
    (GRID, {"sweep__steps": 0}, "sweep.steps"),
    (GRID, {"sweep__seeding": "sometimes"}, "sweep.seeding"),
    (GRID, {"sweep__method": "factorial"}, "sweep.method"),
    (("sweep=csv",), {}, "sweep.csv"),
    (GRID, {"runtime__block_cells": -1}, "runtime.block_cells"),
    (GRID, {"runtime__workers": -1}, "runtime.workers"),
    (GRID, {"runtime__retries": -1}, "runtime.retries"),
    (GRID, {"seed": -1}, "seed"),
    (GRID, {"seed": 2**32}, "seed"),
]


@pytest.mark.parametrize("base,changes,key", VALIDATE_ERRORS,
                         ids=[f"{k}-{i}" for i, (_, _, k) in enumerate(VALIDATE_ERRORS)])
def test_validate_errors_name_the_key(base, changes, key):
    err = validate_error(base, **changes)
    assert err.key == key
    msg = str(err)
    assert key in msg and "allowed" in msg and "\n" not in msg
    assert err.allowed


def test_error_names_value_and_range():
    err = validate_error(GRID, model__kappa=-2.0)
    assert err.value == -2 and "kappa=-2" in str(err) and "[0, 100]" in str(err)
    err = validate_error(GRID, model__fund_capital=0.0)
    assert err.value == 0 and "allowed: [1e+06, 1e+14] (USD)" in str(err)
    err = validate_error(GRID, sweep__axes__correlation=[0.5, 1.5])
    assert err.value == 1.5 and "[-1, 1]" in str(err)
    err = error_of("sweep.paths=abc")
    assert err.value == "abc" and err.allowed == "an integer"


def test_unknown_key_suggests_the_close_one():
    assert "leverage" in str(error_of("model.levrage=1"))
    assert "baseline" in error_of("model=nope").allowed


def test_swept_values_checked_jointly_with_the_model():
    # with corr_alt_eq=0.6 the matrix is fine at correlation 0.5, not at -0.9
    make_plan(changed(GRID, model__corr_alt_eq=0.6, sweep__axes__correlation=[0.2, 0.5]))
    err = validate_error(GRID, model__corr_alt_eq=0.6, sweep__axes__correlation=[-0.9, 0.5])
    assert err.key == "sweep.axes.correlation" and "semi-definite" in str(err)


# ---------------------------------------------------------------- hash


def test_config_hash_is_stable():
    h = config_hash(cfg_of("sweep=smoke"))
    assert len(h) == 64
    assert config_hash(compose_config(["sweep=smoke"])) == h


@pytest.mark.parametrize("change", [
    {"runtime__workers": 3}, {"runtime__block_cells": 7}, {"runtime__max_in_flight": 2},
    {"runtime__retries": 0}, {"runtime__address": "auto"}, {"store__url": "/tmp/x.zarr"},
    {"store__paths": True}, {"store__overwrite": True}, {"name": "other"},
    {"sweep__n_samples": 3}, {"sweep__csv": "x.csv"},
], ids=lambda c: next(iter(c)))
def test_config_hash_ignores_runtime_and_store(change):
    assert config_hash(changed(GRID, **change)) == config_hash(cfg_of(*GRID))


def test_config_hash_ignores_runtime_and_store_groups():
    h = config_hash(cfg_of(*GRID))
    assert config_hash(cfg_of(*GRID, "runtime=cluster", "store=s3")) == h


@pytest.mark.parametrize("change", [
    {"model__kappa": 0.2}, {"model__t_dof": 5}, {"seed": 1}, {"sweep__paths": 65},
    {"sweep__steps": 95}, {"sweep__seeding": "independent"},
    {"sweep__axes__leverage": [0.0, 1.0, 3.0]}, {"sweep__axes__depth_floor": [0.1, 0.2]},
    {"sweep__axes__integration": None},
], ids=lambda c: next(iter(c)))
def test_config_hash_sees_model_sweep_and_seed(change):
    assert config_hash(changed(GRID, **change)) != config_hash(cfg_of(*GRID))


def test_config_hash_sees_model_preset_and_axis_order():
    h = config_hash(cfg_of(*GRID))
    assert config_hash(cfg_of(*GRID, "model=oct2025")) != h
    axes = dict(OmegaConf.to_container(cfg_of(*GRID).sweep.axes))
    reordered = dict(reversed(list(axes.items())))
    assert config_hash(_with_axes(reordered)) != h


def _with_axes(axes: dict):
    cfg = cfg_of(*GRID)
    cfg.sweep.axes = axes
    return cfg


def test_config_hash_ignores_int_vs_float_axis_values():
    a = cfg_of("sweep=smoke", "sweep.axes.leverage=[0,1,2]")
    b = cfg_of("sweep=smoke", "sweep.axes.leverage=[0.0,1.0,2.0]")
    assert config_hash(a) == config_hash(b)


def test_config_hash_of_csv_follows_content(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("leverage,fed_put\n0.5,0\n1.5,1\n")
    b.write_text("leverage,fed_put\n0.5,0\n1.5,1\n")
    csv = ("sweep=csv",)
    ha = config_hash(changed(csv, sweep__csv=str(a)))
    assert ha == config_hash(changed(csv, sweep__csv=str(b)))
    b.write_text("leverage,fed_put\n0.5,0\n1.6,1\n")
    assert ha != config_hash(changed(csv, sweep__csv=str(b)))


def test_kernel_fingerprint_ignores_comments_and_docstrings_not_code():
    """Editing a comment or a docstring of the kernel does not change a cube's identity
    (a resume is not blocked); changing an equation does; the NumPy reference is not part
    of it."""
    from farm.plan.fingerprint import NOT_IN_FINGERPRINT, _code_only

    src = 'def f(x):\n    """Doc."""\n    return x + 1  # one\n'
    assert _code_only(src) == _code_only('def f(x):\n    """Other doc."""\n    return x + 1\n')
    assert _code_only(src) == _code_only("def f(x):\n\n    return (x + 1)  # changed\n")
    assert _code_only(src) != _code_only('def f(x):\n    """Doc."""\n    return x - 1\n')
    assert "reference.py" in NOT_IN_FINGERPRINT


def test_numerics_settings_enter_the_config_hash(monkeypatch):
    """KERNELS_PATH_CHUNK changes a cube's bits (rounding of other chunkings), so it is part
    of the identity; an unrelated variable is not."""
    cfg = compose_config(["sweep=smoke"])
    base = config_hash(cfg)
    monkeypatch.setenv("UNRELATED_SETTING", "1")
    assert config_hash(cfg) == base
    monkeypatch.setenv("KERNELS_PATH_CHUNK", "128")
    assert config_hash(cfg) != base
