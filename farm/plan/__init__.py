"""Stage 1 of the farm: from Hydra overrides to a frozen, validated plan.

Imports nothing from :mod:`farm.store` or :mod:`farm.run`, and nothing heavy at package
import (Ray workers unpickle :class:`farm.plan.blocks.Block` without Hydra).
"""
