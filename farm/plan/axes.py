"""Which model parameters may be swept (an axis of a grid, a box or a CSV column)."""

from __future__ import annotations

from farm.errors import ConfigError

__all__ = ["check_axis_name"]


def check_axis_name(name: str, key: str) -> None:
    """An axis must be a scalar ModelParams field (not a bucket table, not t_dof)."""
    from kernels.params import VECTOR_FIELDS, ModelParams

    scalars = [f for f in ModelParams._fields if f not in VECTOR_FIELDS]
    if name in VECTOR_FIELDS or name == "t_dof":
        raise ConfigError(key, name, "a scalar model parameter",
                          f"invalid config {key}: {name!r} cannot be swept (bucket tables and "
                          "t_dof are fixed shapes of the kernel); allowed: a scalar model "
                          "parameter such as leverage, correlation, fed_put, integration")
    if name not in ModelParams._fields:
        import difflib

        close = difflib.get_close_matches(name, scalars, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigError(key, name, "a scalar model parameter",
                          f"invalid config {key}: {name!r} is not a model parameter{hint}; "
                          "allowed: a scalar model parameter (see conf/model/baseline.yaml)")
