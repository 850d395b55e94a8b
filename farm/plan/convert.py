"""Convert a composed configuration, once, into a frozen :class:`farm.plan.plan.Plan`.

:func:`make_plan` is the boundary between Hydra and the rest of the farm: it validates the
configuration (:mod:`farm.plan.validation`), builds the design once, validates every cell,
and records the resolved configuration and its hash.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from farm.errors import ConfigError
from farm.plan.design import Design, SweepSpec, adaptive_design, make_design
from farm.plan.draws import read_draws, with_draws
from farm.plan.episodes import apply_episode
from farm.plan.identity import config_hash, model_values, to_yaml
from farm.plan.limits import check_design_size
from farm.plan.plan import Plan, RuntimePlan, StorePlan, SweepPlan
from farm.plan.validation import check_cells, validate_config

__all__ = ["make_plan", "sweep_spec"]


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def sweep_spec(cfg: DictConfig) -> SweepSpec:
    """The plain values a design is made of."""
    sw = cfg.sweep
    axes = _plain(sw.axes) or {}
    return SweepSpec(method=str(sw.method), axes={str(k): v for k, v in axes.items()},
                     n_samples=int(sw.n_samples), csv=None if sw.csv is None else str(sw.csv),
                     block_cells=int(cfg.runtime.block_cells), seed=int(cfg.seed),
                     workers=int(cfg.runtime.workers) or os.cpu_count() or 1,
                     adaptive=_plain(sw.adaptive) if sw.method == "adaptive" else None)


def _with_posterior(cfg: DictConfig, design: Design) -> Design:
    """The grid once per posterior draw (``sweep.posterior`` + ``sweep.posterior_draws``)."""
    n, path = int(cfg.sweep.posterior_draws), cfg.sweep.posterior
    if n == 0:
        raise ConfigError("sweep.posterior", path, "a posterior only with "
                          "sweep.posterior_draws=N >= 1 (the number of draws to sweep)")
    if n < 0:
        raise ConfigError("sweep.posterior_draws", n, "an integer >= 0 (0: no draws)")
    if path is None:
        raise ConfigError("sweep.posterior", None, "a calibration directory (farm calibrate "
                          "--out) or its posterior.csv, with sweep.posterior_draws=N")
    design = with_draws(design, read_draws(str(path), n), int(cfg.runtime.block_cells),
                        int(cfg.runtime.workers) or os.cpu_count() or 1)
    check_design_size("sweep.posterior_draws", n, design.n_cells, len(design.axes),
                      paths=int(cfg.sweep.paths), store_paths=bool(cfg.store.paths))
    return design


def _adaptive(cfg: DictConfig) -> Any:
    from farm.plan.adaptivespec import adaptive_spec

    if cfg.sweep.method != "adaptive":
        return None
    return adaptive_spec(_plain(cfg.sweep.adaptive), int(cfg.sweep.paths), _plain(cfg.sweep.axes))


def make_plan(cfg: DictConfig) -> Plan:
    """Validate ``cfg`` and convert it, once, into a :class:`Plan`; raise
    :class:`farm.errors.ConfigError` (one line: key, value, what is allowed) on a problem."""
    from kernels.params import make_params

    episode = apply_episode(cfg)  # episode=NAME: its model values over the composed model
    validate_config(cfg)
    design = make_design(sweep_spec(cfg))
    if int(cfg.sweep.posterior_draws) or cfg.sweep.posterior is not None:
        design = _with_posterior(cfg, design)
    if design.method == "csv":  # the file's rows are its cells: known once it is read
        check_design_size("sweep.csv", str(cfg.sweep.csv), design.n_cells, len(design.axes),
                          paths=int(cfg.sweep.paths), store_paths=bool(cfg.store.paths))
    model = make_params(model_values(cfg.model), validate=False)
    check_cells(model, design, csv=cfg.sweep.method == "csv", value_for=lambda n: cfg.model[n])
    if design.method == "adaptive":  # later waves go anywhere in the box: check its ends
        ends = np.array([[float(v[i]) for v in _plain(cfg.sweep.axes).values()] for i in (0, 1)])
        check_cells(model, adaptive_design(design.axes, ends, np.ones(2), np.zeros(2), 2),
                    csv=False, value_for=lambda n: cfg.model[n])
    rt, st = cfg.runtime, cfg.store
    return Plan(
        name=str(cfg.name),
        model=model,
        t_dof=int(cfg.model.t_dof),
        sweep=SweepPlan(design=design, paths=int(cfg.sweep.paths), steps=int(cfg.sweep.steps),
                        seeding=str(cfg.sweep.seeding), seed=int(cfg.seed),
                        adaptive=_adaptive(cfg)),
        runtime=RuntimePlan(workers=int(rt.workers), block_cells=int(rt.block_cells),
                            max_in_flight=int(rt.max_in_flight), retries=int(rt.retries),
                            address=None if rt.address is None else str(rt.address),
                            cpus_per_task=int(rt.cpus_per_task)),
        store=StorePlan(url=str(st.url), paths=bool(st.paths), overwrite=bool(st.overwrite),
                        endpoint_url=None if not st.endpoint_url else str(st.endpoint_url),
                        shared_fs=bool(st.shared_fs)),
        config_yaml=to_yaml(cfg),
        config_hash=config_hash(cfg),
        episode=episode,
    )
