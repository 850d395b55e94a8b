"""``farm explore STORE -o explore.html``: the interactive cube explorer.

Part of the command line (farm/cli.py registers it with :func:`explore_parser`); the
page itself is built by :mod:`analysis.explorer`.
"""

from __future__ import annotations

import argparse
import sys

from farm.terminal import open_sound_cube, refuse_os_error, safe_text

__all__ = ["explore_parser"]


def _cmd_explore(args: argparse.Namespace) -> int:
    from analysis.explorer import build_explorer
    from farm.errors import UserError

    ds = open_sound_cube(args.store, args.allow_incomplete)
    for item in args.sel:
        name, _, value = item.partition("=")
        if name not in ds.dims or not value:
            raise UserError(f"--sel {item!r}: allowed: AXIS=VALUE with AXIS one of "
                            f"{', '.join(map(str, ds.dims))}")
        try:
            ds = ds.sel({name: float(value)}, method="nearest").expand_dims(name)
        except ValueError:
            raise UserError(f"--sel {item!r}: the value must be a number") from None
    if args.fan_cells < 0:
        raise UserError(f"--fan-cells {args.fan_cells}: allowed: an integer >= 0")
    try:
        out = build_explorer(ds, args.output, level=args.level, fan_cells=args.fan_cells)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        refuse_os_error(exc, "cannot write the explorer", args.output)
        raise
    print(safe_text(f"farm: explorer written to {out} (open it in a browser; it works "
                    "offline)"), file=sys.stdout)
    return 0


def explore_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``farm explore``."""
    p = sub.add_parser("explore", help="write a self-contained interactive HTML page to "
                       "slice a cube (surfaces, frontier with its band, fan charts)")
    p.add_argument("store", help="cube path or URL")
    p.add_argument("-o", "--output", default="explore.html", help="HTML file to write")
    p.add_argument("--level", type=float, default=0.5, help="frontier level (default 0.5)")
    p.add_argument("--fan-cells", type=int, default=2048,
                   help="re-simulate fan charts for every cell when the cube has at most "
                        "this many (0: none; default 2048)")
    p.add_argument("--sel", action="append", default=[], metavar="AXIS=VALUE",
                   help="keep one value of an axis (nearest), e.g. --sel fed_put=0.5; "
                        "repeatable")
    p.add_argument("--allow-incomplete", action="store_true",
                   help="explore a cube whose run has not finished (unfinished cells blank)")
    p.set_defaults(func=_cmd_explore)
