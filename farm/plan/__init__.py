"""Stage 1 of the farm: from Hydra overrides to a frozen, validated :class:`Plan`.

``compose_config(overrides)`` (:mod:`farm.plan.compose`) composes ``conf/``;
``make_plan(cfg)`` (:mod:`farm.plan.convert`) validates it, builds the design once and
converts it into frozen typed values. Imports nothing from :mod:`farm.store` or
:mod:`farm.run`. Attributes load lazily, so a Ray worker that unpickles a
:class:`farm.plan.blocks.Block` does not import Hydra.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Plan", "compose_config", "make_plan"]


def __getattr__(name: str) -> Any:
    if name == "compose_config":
        from farm.plan.compose import compose_config

        return compose_config
    if name == "Plan":
        from farm.plan.plan import Plan

        return Plan
    if name == "make_plan":
        from farm.plan.convert import make_plan

        return make_plan
    raise AttributeError(f"module 'farm.plan' has no attribute {name!r}")
