"""The typed plan of a run: frozen, validated values (no config object in sight).

A :class:`Plan` is made once, by :func:`farm.plan.convert.make_plan`, from a composed
configuration; everything after it (the store, the run, the dry run) takes a plan or
plain values. This module imports neither Hydra nor OmegaConf.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from farm.plan.design import Design, cell_params

__all__ = ["Plan", "RuntimePlan", "StorePlan", "SweepPlan"]


@dataclass(frozen=True)
class SweepPlan:
    """The cells and their Monte Carlo size: ``paths`` per cell, ``steps`` per path."""

    design: Design
    paths: int
    steps: int
    seeding: str  # common | independent
    seed: int  # root PRNG seed
    adaptive: Any = None  # farm.plan.adaptivespec.AdaptiveSpec of method=adaptive, else None


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
    episode: Any = None  # farm.plan.episodes.Episode of `episode=NAME` (its targets), or None

    @property
    def design(self) -> Design:
        return self.sweep.design

    def with_chunks(self, chunks) -> Plan:
        """The same plan with another block layout (an existing store's, on resume)."""
        sweep = dataclasses.replace(self.sweep, design=self.design.rechunk(chunks))
        return dataclasses.replace(self, sweep=sweep)

    def with_design(self, design: Design) -> Plan:
        """The same plan over other cells (an adaptive sweep's cells so far)."""
        return dataclasses.replace(self, sweep=dataclasses.replace(self.sweep, design=design))

    def cell_params(self, cells) -> Any:
        """Stacked model parameters of flat cell indices ``cells``."""
        return cell_params(self.model, self.design, cells)
