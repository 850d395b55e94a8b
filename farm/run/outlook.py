"""What a run would do with its store, told by ``farm run --dry-run`` (reads only).

A dry run writes nothing and takes no lock; it says whether the target store is
new, would be resumed (and how much of it is done), is complete already, would be
refused (another configuration, or something that is not a cube), or replaced
(``store.overwrite=true``). The real run decides the same way
(:func:`farm.run.sweep.open_or_create`).
"""

from __future__ import annotations

import numpy as np

from farm.errors import UserError
from farm.plan.plan import Plan
from farm.store.cube import open_existing
from farm.store.layout import STATUS_DONE, STATUS_FLAGGED
from farm.store.refusal import check_creatable, compatibility

__all__ = ["store_outlook"]


def store_outlook(plan: Plan) -> str:
    """One line: what ``farm run`` would do with ``plan.store.url``."""
    url, opts = plan.store.url, plan.store.storage_options()
    try:
        replace = check_creatable(url, opts, overwrite=True)
    except UserError as exc:  # something there that is not a cube
        return f"refused: {exc}"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc}): the run would fail"
    if not replace:
        return "new: the run would create it"
    if plan.store.overwrite:
        return "exists: the run would delete it and start afresh (store.overwrite=true)"
    try:
        cube = open_existing(url, opts)
        ok, why = compatibility(url, cube.attrs, plan.config_hash, plan.config_yaml)
        if not ok:
            return (f"exists with another configuration: the run would be refused ({why}); "
                    "choose another store.url or name=..., or add store.overwrite=true")
        status = cube.cell_status()
    except (UserError, OSError) as exc:
        return f"exists but cannot be read ({exc}): see farm status --verify"
    done = int(np.isin(status, (STATUS_DONE, STATUS_FLAGGED)).sum())
    if done == status.size:
        return f"exists and is complete ({done} of {status.size} cells): the run would do nothing"
    return (f"exists with this configuration: the run would resume it ({done} of "
            f"{status.size} cells done)")
