"""Structured-config schema of the farm, registered in Hydra's ConfigStore.

The dataclasses here are the types Hydra merges ``conf/`` into: an unknown key
or a value of the wrong type fails when the config is composed, before any
range check (those live in :func:`farm.plan.config.validate`).

The model schema is generated from :data:`kernels.paramspec.SPECS` (where every
model parameter is declared once), so it always carries every model field with the
kernel's default: scalar fields are
``float``, the bucket tables (``VECTOR_FIELDS``) are ``List[float]``, plus the
integer Student-t degrees of freedom ``t_dof`` (a static shape parameter of the
kernel, not part of ``ModelParams``).

Config tree (units in brackets)::

    name: str            label of the run; default store is results/${name}.zarr
    seed: int            root PRNG seed, 0 <= seed < 2**32
    model: ModelConfig   every model parameter (kernels/paramspec.py) + t_dof
    sweep: SweepConfig   design of cells, paths per cell, steps per path
    runtime: RuntimeConfig  Ray workers, block size, retries
    store: StoreConfig   where the Zarr cube goes
    episode: dict|None   a calibration episode (``episode=NAME``; docs/calibration.md)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional  # noqa: UP035  (OmegaConf needs typing generics)

from hydra.core.config_store import ConfigStore

from kernels.params import VECTOR_FIELDS
from kernels.paramspec import SPECS

__all__ = [
    "METHODS",
    "SAMPLED_METHODS",
    "SEEDINGS",
    "FarmConfig",
    "ModelConfig",
    "RuntimeConfig",
    "StoreConfig",
    "SweepConfig",
    "register_configs",
]

METHODS = ("grid", "lhs", "sobol", "csv", "adaptive")
SAMPLED_METHODS = ("lhs", "sobol", "csv", "adaptive")
SEEDINGS = ("common", "independent")


def _model_fields() -> list[tuple[str, Any, Any]]:
    """(name, type, dataclasses.field) for every ModelParams field, then ``t_dof``."""
    out: list[tuple[str, Any, Any]] = []
    for name, spec in SPECS.items():
        default = spec.default
        if name in VECTOR_FIELDS:
            values = [float(v) for v in default]
            out.append((name, List[float], field(default_factory=lambda v=values: list(v))))  # noqa: UP006
        else:
            out.append((name, float, field(default=float(default))))
    out.append(("t_dof", int, field(default=4)))
    return out


ModelConfig = dataclasses.make_dataclass(
    "ModelConfig",
    _model_fields(),
    namespace={
        "__doc__": (
            "Model parameters: every entry of kernels.paramspec.SPECS (floats; "
            "List[float] for the bucket tables) plus t_dof (int, Student-t degrees of "
            "freedom of the shocks, default 4). Units and ranges in docs/model.md."
        ),
        "__module__": __name__,
    },
)


@dataclass
class AdaptiveConfig:
    """An adaptive sweep's waves (``sweep.method=adaptive``; farm.plan.adaptivespec).

    var: the probability whose level set is sought (``p_systemic``...).
    level: the level (0 < level < 1) the frontier is drawn at.
    initial_cells: wave 1, a scrambled Sobol' design over the axes' ``[lo, hi]``.
    wave_cells: cells per later wave (new positions plus more paths at old ones).
    block_cells: cells per block and per chunk; every wave is a whole number of blocks.
    max_cells: cell budget (all waves; a cell is ``sweep.paths`` paths at one point).
    max_waves: wave budget.
    max_paths: most paths at one point (its replicates pooled).
    paths_share: at most this share of a wave adds paths to earlier points.
    stop_flips: the frontier stopped moving when a wave changes the side of fewer than
        this share of reference points ...
    stop_waves: ... in this many waves in a row.
    max_minutes: wall-clock budget in minutes (0: none); stops between waves.
    candidates: Sobol' candidates scored per wave.
    """

    var: str = "p_systemic"
    level: float = 0.5
    initial_cells: int = 256
    wave_cells: int = 128
    block_cells: int = 16
    max_cells: int = 2048
    max_waves: int = 16
    max_paths: int = 640
    paths_share: float = 0.5
    stop_flips: float = 0.002
    stop_waves: int = 2
    max_minutes: float = 0.0
    candidates: int = 4096


@dataclass
class SweepConfig:
    """The design of cells and the Monte Carlo size of each cell.

    method: ``grid`` (cartesian product of the axis value lists, axis order as
        written), ``lhs`` / ``sobol`` (``n_samples`` points in the box given by
        ``[lo, hi]`` per axis), ``csv`` (one cell per row of the file ``csv``).
    axes: model parameter name -> list of values (grid) or ``[lo, hi]`` (lhs,
        sobol); empty for ``csv`` and for a single cell.
    n_samples: number of cells of a sampled design (sobol rounds up to a power of 2).
    csv: path of the CSV design (header: model parameter names), for method=csv.
    paths: Monte Carlo paths per cell.
    steps: time steps per path (each ``model.step_hours`` hours).
    seeding: ``common`` (common random numbers: every cell sees the same shocks)
        or ``independent`` (shocks depend on the cell's parameter values).
    posterior: a calibration's output directory (``farm calibrate``) or its
        ``posterior.csv``: the draws of the uncertain parameters (farm.plan.draws).
    posterior_draws: sweep the grid once per each of the first N draws (a last ``draw``
        dimension); 0 = no draws (one parameter set).
    adaptive: the waves of ``method=adaptive`` (:class:`AdaptiveConfig`).
    """

    method: str = "grid"
    axes: Dict[str, Any] = field(default_factory=dict)  # noqa: UP006
    n_samples: int = 256
    csv: Optional[str] = None  # noqa: UP045
    paths: int = 256
    steps: int = 96
    seeding: str = "common"
    posterior: Optional[str] = None  # noqa: UP045
    posterior_draws: int = 0
    adaptive: AdaptiveConfig = field(default_factory=AdaptiveConfig)


@dataclass
class RuntimeConfig:
    """How the farm runs (never changes the cube's numbers).

    workers: Ray worker processes; 0 = one per available core.
    block_cells: cells per block (= per Zarr chunk) sent to one task; 0 = automatic
        (:func:`farm.plan.design.block_size`: 128, or 4,096 for sweeps of 131,072 cells
        or more).
    max_in_flight: cap on tasks submitted but not finished; 0 = 2 x workers.
    retries: attempts after the first for a failing block.
    address: Ray address (``auto``, ``ray://host:10001``); null = start Ray locally.
    cpus_per_task: CPUs Ray reserves for one block task.
    """

    workers: int = 0
    block_cells: int = 0
    max_in_flight: int = 0
    retries: int = 3
    address: Optional[str] = None  # noqa: UP045
    cpus_per_task: int = 1


@dataclass
class StoreConfig:
    """Where the result cube is written (never changes the cube's numbers).

    url: local path or fsspec URL (``s3://bucket/x.zarr``, ``gs://...``).
    paths: also store per-path outputs (a ``path`` dimension) for drill-down.
    overwrite: replace an existing store instead of resuming it.
    endpoint_url: S3-compatible endpoint (MinIO, moto); null = AWS default.
    shared_fs: a local path that every node of a cluster sees (NFS, EFS, Lustre).
    """

    url: str = "results/${name}.zarr"
    paths: bool = False
    overwrite: bool = False
    endpoint_url: Optional[str] = None  # noqa: UP045
    shared_fs: bool = False


@dataclass
class FarmConfig:
    """The whole farm configuration (the primary config's schema)."""

    name: str = "farm"
    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)  # type: ignore[valid-type]
    sweep: SweepConfig = field(default_factory=SweepConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    # a calibration episode (conf/episode/NAME.yaml; checked by farm.plan.episodes)
    episode: Optional[Dict[str, Any]] = None  # noqa: UP006, UP045


SCHEMA_NAME = "farm_schema"


def register_configs() -> None:
    """Register the schema in Hydra's ConfigStore (idempotent).

    ``conf/config.yaml`` names ``farm_schema`` first in its defaults list, so every
    group file is merged into (and checked against) these dataclasses.
    """
    ConfigStore.instance().store(name=SCHEMA_NAME, node=FarmConfig)


register_configs()
