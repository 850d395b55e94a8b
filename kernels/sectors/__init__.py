"""One small pure module per sector (docs/model.md section 4).

Each sector maps the running drawdowns of the day (worst marks so far,
``dd[asset, path]`` with assets ``(btc, alt, eq)`` on the *first* axis and paths
on the last) to its *cumulative* forced sales in dollars. Targets are
non-decreasing in the drawdowns, so a position once liquidated stays closed;
the cascade turns them into per-step flows.

Layout: paths are the last (minor, contiguous) axis everywhere in the kernel, so
every elementwise operation of the cascade runs over long contiguous vectors of
paths; small tables (buckets, banks, assets) lead. This alone made the cascade
several times faster on CPU than the assets-last layout (see BENCHMARKS.md).
"""

from . import banks, defi, fed, funds, perps, treasury

__all__ = ["banks", "defi", "fed", "funds", "perps", "treasury"]
