"""One small pure module per sector (DESIGN.md section 3.4).

Each sector maps the running drawdowns of the day (worst marks so far,
``dd[..., asset]`` with assets ``(btc, alt, eq)``) to its *cumulative* forced
sales in dollars. Targets are non-decreasing in the drawdowns, so a position
once liquidated stays closed; the cascade turns them into per-step flows.
"""

from . import banks, defi, fed, funds, perps, treasury

__all__ = ["banks", "defi", "fed", "funds", "perps", "treasury"]
