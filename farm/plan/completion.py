"""Shell-completion candidates for ``farm run`` overrides (used by farm/cli.py)."""

from __future__ import annotations

from farm.plan.compose import CONF_DIR

__all__ = ["override_choices"]


def override_choices(prefix: str = "") -> list[str]:
    """Shell-completion candidates for an override: ``group=option`` for every config group
    under ``conf/`` (``sweep=smoke``, ``model=oct2025``, ...) and ``key=`` for every
    top-level key of the schema's sections, those starting with ``prefix``."""
    from farm.plan.schema import FarmConfig

    out = [f"{group.name}={option.stem}" for group in sorted(CONF_DIR.iterdir())
           if group.is_dir() for option in sorted(group.glob("*.yaml"))]
    for section, value in vars(FarmConfig()).items():
        fields = getattr(value, "__dataclass_fields__", None)
        out += [f"{section}.{f}=" for f in fields] if fields else [f"{section}="]
    return [c for c in out if c.startswith(prefix)]
