"""The ``farm`` command line: run, status, report (and submit/jobs/logs/stop for clusters).

Exit status (README, "Sweeps"): 0 success, 2 user error (bad config,
refused store; a one-line message, no traceback), 1 anything else (including a
sweep that finished with failed blocks). ``FARM_DEBUG=1`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

log = logging.getLogger("farm")

EXIT_OK, EXIT_FAIL, EXIT_USER = 0, 1, 2


def _user_errors() -> tuple[type[BaseException], ...]:
    from farm.plan.config import ConfigError
    from farm.store.lock import StoreLockedError
    from farm.store.storage import StoreRefusedError

    errors: list[type[BaseException]] = [ConfigError, StoreRefusedError, StoreLockedError]
    try:
        from farm.run.submit import SubmitError

        errors.append(SubmitError)
    except ImportError:
        pass
    try:
        from analysis.cube import IncompleteCubeError, NotAFarmCubeError

        errors += [IncompleteCubeError, NotAFarmCubeError]
    except ImportError:
        pass
    return tuple(errors)


def cmd_run(args: argparse.Namespace) -> int:
    from farm.plan.config import compose_config, validate
    from farm.plan.design import make_design
    from farm.run.sweep import dry_run_text, run_sweep, summary_text

    cfg = compose_config(args.overrides)
    validate(cfg)
    if args.dry_run:
        print(dry_run_text(cfg, make_design(cfg)))
        return EXIT_OK
    report = run_sweep(cfg, progress=not args.no_progress)
    print(summary_text(report, cfg))
    return EXIT_OK if report.ok else EXIT_FAIL


def cmd_status(args: argparse.Namespace) -> int:
    from farm.store.status import store_summary

    print(store_summary(args.store))
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from analysis import cube_info, open_cube, price_paths, resimulate
    from analysis.report import build_report, headlines, neutral_values

    ds = open_cube(args.store, allow_incomplete=args.allow_incomplete)
    info = cube_info(ds)
    fan = None
    if not args.no_fan:  # sample paths of the neutral cell, re-simulated from provenance
        point = neutral_values(ds)
        point["leverage"] = max(point.get("leverage", 1.0), 1.0) if "leverage" in point else 1.0
        point = {k: v for k, v in point.items() if k in ds.coords}
        res, spec = resimulate(ds, point, n_paths=min(int(ds.attrs.get("n_paths", 64)), 256))
        step_hours = float(spec.model.get("step_hours", 0.25))
        _, fan = price_paths(res.prices[0], step_hours)
    out = build_report(ds, args.output, level=args.level, fan_paths=fan,
                       channels=not args.no_channels)
    for topic, line in headlines(ds, level=args.level).items():
        print(f"  {topic}: {line}")
    if info.n_flagged:
        print(f"  flagged: {info.n_flagged} of {info.n_cells} cells are done but flagged "
              "(status 3): the cascade hit max_rounds on more than capped_limit of their "
              "path-steps")
    if info.n_failed:
        print(f"  failed: {info.n_failed} cells (left out; blocks "
              f"{', '.join(map(str, sorted(info.failed_blocks)))})")
    print(f"farm: report written to {out}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="farm", description="Monte Carlo scenario farm for crypto-crisis systemic risk.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run or resume a sweep (Hydra overrides as arguments)",
                         description="Run or resume a sweep. Example: farm run sweep=smoke "
                         "model=oct2025 runtime.workers=2 store.url=results/x.zarr")
    run.add_argument("--dry-run", action="store_true",
                     help="validate and print cells, blocks, paths, size and time; write nothing")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. sweep=smoke seed=3")
    run.set_defaults(func=cmd_run)

    status = sub.add_parser("status", help="blocks done/failed and the config of a store")
    status.add_argument("store", help="path or URL of the cube")
    status.set_defaults(func=cmd_status)

    report = sub.add_parser("report", help="write a self-contained HTML report of a cube")
    report.add_argument("store", help="path or URL of the cube")
    report.add_argument("-o", "--output", default="report.html", help="HTML file to write")
    report.add_argument("--level", type=float, default=0.5,
                        help="probability level of the tipping frontier (default 0.5)")
    report.add_argument("--no-fan", action="store_true",
                        help="skip the fan chart (it re-simulates one cell)")
    report.add_argument("--no-channels", action="store_true",
                        help="skip the channel-ablation and threshold tables (they re-run "
                        "the kernel along leverage: tens of seconds)")
    report.add_argument("--allow-incomplete", action="store_true",
                        help="report on the finished part of an unfinished cube")
    report.set_defaults(func=cmd_report)

    try:
        from farm.run.submit import add_cluster_parsers
    except ImportError:
        pass
    else:
        add_cluster_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except _user_errors() as exc:
        if os.environ.get("FARM_DEBUG"):
            raise
        print(f"farm: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt:
        print("farm: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except Exception as exc:  # unexpected: one line unless debugging
        if os.environ.get("FARM_DEBUG"):
            raise
        print(f"farm: failed: {type(exc).__name__}: {exc} (FARM_DEBUG=1 for a traceback)",
              file=sys.stderr)
        return EXIT_FAIL


if __name__ == "__main__":
    sys.exit(main())
