"""Adaptive sweeps: spend cells and paths where the tipping frontier is (work in progress:
the selection of each wave's cells, :mod:`farm.adaptive.acquire`; the waves themselves are
not wired into ``farm run`` yet)."""
