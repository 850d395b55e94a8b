"""The typed plan of a run: a composed config converted once into frozen, validated values.

:func:`make_plan` is the boundary between Hydra and the rest of the farm: it validates the
configuration (:mod:`farm.plan.validation`), builds the design once, validates every cell,
and records the resolved configuration and its hash. Everything after it (the store, the
run, the dry run) takes a :class:`Plan` or plain values, never a config object.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from farm.plan.design import Design, SweepSpec, cell_params, make_design
from farm.plan.identity import config_hash, model_values, to_yaml
from farm.plan.validation import check_cells, validate_config

__all__ = ["Plan", "RuntimePlan", "StorePlan", "SweepPlan", "make_plan"]


@dataclass(frozen=True)
class SweepPlan:
    """The cells and their Monte Carlo size: ``paths`` per cell, ``steps`` per path."""

    design: Design
    paths: int
    steps: int
    seeding: str  # common | independent
    seed: int  # root PRNG seed


@dataclass(frozen=True)
class RuntimePlan:
    """How the run executes (never changes the numbers)."""

    workers: int  # 0 = one per core
    block_cells: int
    max_in_flight: int  # 0 = 2 x worker slots
    retries: int
    address: str | None  # Ray address; None = start Ray here
    cpus_per_task: int


@dataclass(frozen=True)
class StorePlan:
    """Where the cube goes (never changes the numbers)."""

    url: str
    paths: bool  # store per-path outputs
    overwrite: bool
    endpoint_url: str | None
    shared_fs: bool

    def storage_options(self) -> dict[str, Any]:
        """fsspec options; credentials stay in the environment (never here)."""
        return {"client_kwargs": {"endpoint_url": self.endpoint_url}} if self.endpoint_url else {}


@dataclass(frozen=True)
class Plan:
    """Everything a run needs, validated: the model (its own values; swept axes are
    replaced per cell), the sweep, the runtime, the store and the identity of the numbers."""

    name: str
    model: Any  # kernels.params.ModelParams
    t_dof: int
    sweep: SweepPlan
    runtime: RuntimePlan
    store: StorePlan
    config_yaml: str
    config_hash: str

    @property
    def design(self) -> Design:
        return self.sweep.design

    def with_chunks(self, chunks) -> Plan:
        """The same plan with another block layout (an existing store's, on resume)."""
        sweep = dataclasses.replace(self.sweep, design=self.design.rechunk(chunks))
        return dataclasses.replace(self, sweep=sweep)

    def cell_params(self, cells) -> Any:
        """Stacked model parameters of flat cell indices ``cells``."""
        return cell_params(self.model, self.design, cells)


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def sweep_spec(cfg: DictConfig) -> SweepSpec:
    """The plain values a design is made of."""
    sw = cfg.sweep
    axes = _plain(sw.axes) or {}
    return SweepSpec(method=str(sw.method), axes={str(k): v for k, v in axes.items()},
                     n_samples=int(sw.n_samples), csv=None if sw.csv is None else str(sw.csv),
                     block_cells=int(cfg.runtime.block_cells), seed=int(cfg.seed))


def make_plan(cfg: DictConfig) -> Plan:
    """Validate ``cfg`` and convert it, once, into a :class:`Plan`; raise
    :class:`farm.errors.ConfigError` (one line: key, value, what is allowed) on a problem."""
    from kernels.params import make_params

    validate_config(cfg)
    design = make_design(sweep_spec(cfg))
    model = make_params(model_values(cfg.model), validate=False)
    check_cells(model, design, csv=cfg.sweep.method == "csv", value_for=lambda n: cfg.model[n])
    rt, st = cfg.runtime, cfg.store
    return Plan(
        name=str(cfg.name),
        model=model,
        t_dof=int(cfg.model.t_dof),
        sweep=SweepPlan(design=design, paths=int(cfg.sweep.paths), steps=int(cfg.sweep.steps),
                        seeding=str(cfg.sweep.seeding), seed=int(cfg.seed)),
        runtime=RuntimePlan(workers=int(rt.workers), block_cells=int(rt.block_cells),
                            max_in_flight=int(rt.max_in_flight), retries=int(rt.retries),
                            address=None if rt.address is None else str(rt.address),
                            cpus_per_task=int(rt.cpus_per_task)),
        store=StorePlan(url=str(st.url), paths=bool(st.paths), overwrite=bool(st.overwrite),
                        endpoint_url=None if not st.endpoint_url else str(st.endpoint_url),
                        shared_fs=bool(st.shared_fs)),
        config_yaml=to_yaml(cfg),
        config_hash=config_hash(cfg),
    )
