"""The ``farm`` command line: run, status, report (and submit/jobs/logs/stop for clusters).

The only module of the farm that prints: it composes the config, converts it once into a
:class:`farm.plan.Plan`, hands the plan to :mod:`farm.run` and prints what comes back
(a progress bar on stderr, the summary on stdout).

Exit status (README, "Sweeps"): 0 success, 2 user error (bad config, refused store,
unreachable cluster: :class:`farm.errors.UserError`, a one-line message, no traceback),
1 anything else (including a sweep that finished with failed blocks), 141 a closed stdout
pipe (``| head``). ``FARM_DEBUG=1`` shows tracebacks. Conventions: docs/configuration.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence

from farm import terminal as term
from farm.cli_cluster import (  # noqa: F401  (the handlers stay reachable as farm.cli._cmd_*)
    _cmd_jobs,
    _cmd_logs,
    _cmd_stop,
    _cmd_submit,
    cluster_parsers,
)
from farm.cli_explore import explore_parser
from farm.terminal import FarmArgumentParser, Progress, log_to_stderr, one_line, safe_text
from farm.terminal import refuse_os_error as _refuse_os_error

log = logging.getLogger("farm")

EXIT_OK, EXIT_FAIL, EXIT_USER, EXIT_PIPE = 0, 1, 2, 141  # 141: 128 + SIGPIPE, as a shell says


def _user_errors() -> tuple[type[BaseException], ...]:
    from farm.errors import UserError
    from kernels.cubeformat import NotACubeError

    errors: list[type[BaseException]] = [UserError, NotACubeError]
    try:
        from analysis.cube import IncompleteCubeError

        errors.append(IncompleteCubeError)
    except ImportError:
        pass
    return tuple(errors)


def _note(text: str) -> None:
    if not _QUIET:
        print(safe_text(text, multiline=True), file=sys.stderr)


_QUIET = False  # -q/--quiet: no notes on stderr (set by main)


def _say(text: str) -> None:
    """Print text built from data on stdout, control characters escaped."""
    print(safe_text(text, multiline=True))


def cmd_run(args: argparse.Namespace) -> int:
    from farm.adaptive.texts import adaptive_dry_run_lines, run_and_summarise
    from farm.plan.compose import compose_config
    from farm.plan.convert import make_plan
    from farm.run.sweep import run_sweep
    from farm.run.texts import dry_run_text, episode_text, summary_text

    cfg = compose_config(args.overrides)
    if args.cfg:
        return _show_config(cfg, args.cfg, args.package)
    plan = make_plan(cfg)
    if args.dry_run:
        _say("\n".join([dry_run_text(plan), *adaptive_dry_run_lines(plan)]))
        return EXIT_OK
    enabled = not (args.no_progress or args.quiet)
    bar = lambda n, done, paths: Progress(n, done, paths, enabled=enabled)  # noqa: E731
    try:
        if plan.sweep.adaptive is not None:  # waves of runs: farm.adaptive
            text, ok = run_and_summarise(plan, notify=_note, progress=bar)
            return _say(text) or (EXIT_OK if ok else EXIT_FAIL)
        report = run_sweep(plan, notify=_note, progress=bar)
    except OSError as exc:  # a read-only or full disk, a file where a directory should be
        _refuse_os_error(exc, "cannot write the store", plan.store.url)
        raise
    _say(summary_text(report, plan))
    if plan.episode is not None and report.ok:  # its table, from the per-path values
        from analysis import open_cube
        _say(episode_text(plan, open_cube(report.url,
                                          storage_options=plan.store.storage_options() or None)))
    return EXIT_OK if report.ok else EXIT_FAIL


def _show_config(cfg, which: str, package: str | None) -> int:
    """``farm run --cfg job|hydra|all [-p KEY]``: the composed config as YAML (as Hydra's
    ``--cfg``); the farm has no Hydra runtime config, so ``hydra`` shows a note only."""
    if which in ("job", "all"):
        _say(term.config_yaml(cfg, package))
    if which in ("hydra", "all"):
        print("farm: no Hydra runtime config (the farm composes conf/ with Hydra's compose "
              "API; --cfg job shows the farm's config)", file=sys.stderr)
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    """Exit 1 when ``--verify`` finds bad chunks or a lost status (the data are damaged)."""
    from farm.store.status import store_summary

    try:
        text = store_summary(args.store, verify=args.verify)
    except OSError as exc:
        _refuse_os_error(exc, "cannot read the store", args.store)
        raise
    _say(text)
    damaged = args.verify and ("bad chunk:" in text or "DAMAGED:" in text)
    return EXIT_FAIL if damaged else EXIT_OK


def cmd_repair(args: argparse.Namespace) -> int:
    from farm.store.repair import repair_store

    _say(f"farm: {repair_store(args.store).summary()}")
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from analysis import cube_info
    from analysis.report import build_report, headlines
    from analysis.resim import report_fan

    ds = term.open_sound_cube(args.store, args.allow_incomplete)
    info = cube_info(ds)
    fan = {} if args.no_fan else report_fan(ds)  # the reference cell, re-simulated
    try:
        out = build_report(ds, args.output, level=args.level, channels=not args.no_channels,
                           store=args.store, **fan)
    except OSError as exc:
        _refuse_os_error(exc, "cannot write the report", args.output)
        raise
    for topic, line in headlines(ds, level=args.level).items():
        _say(f"  {topic}: {line}")
    if info.n_flagged:
        _say(f"  flagged: {info.n_flagged} of {info.n_cells} cells are done but flagged "
             "(status 3): the cascade hit max_rounds on more than capped_limit of their "
             "path-steps")
    if info.n_failed:
        _say(f"  failed: {info.n_failed} cells (left out; blocks "
             f"{', '.join(map(str, sorted(info.failed_blocks)))})")
    _say(f"farm: report written to {out}")
    return EXIT_OK


def cmd_calibrate(args: argparse.Namespace) -> int:
    """History matching in waves (docs/calibration.md, "Calibrating")."""
    from farm.calibrate.config import load_calibration

    cfg = load_calibration(args.overrides, quick=args.quick)
    start = time.perf_counter()

    def bar(n: int, done: int, paths: int) -> Progress:
        return Progress(n, done, paths, enabled=not (args.no_progress or args.quiet))

    if args.loo:
        from farm.calibrate.loo import leave_one_out
        from farm.calibrate.texts import loo_text

        _say(loo_text(leave_one_out(cfg, progress=bar, notify=_note)))
        return EXIT_OK
    from farm.calibrate.engine import calibrate
    from farm.calibrate.outputs import write_outputs
    from farm.calibrate.texts import summary_text

    result = calibrate(cfg, progress=bar, notify=_note)
    files = write_outputs(result, report=not args.no_report)
    _say(summary_text(result, files, time.perf_counter() - start))
    return EXIT_OK


def _complete_overrides(prefix: str, **_kwargs) -> list[str]:
    from farm.plan.completion import override_choices

    return override_choices(prefix)


def build_parser() -> argparse.ArgumentParser:
    parser = FarmArgumentParser(
        prog="farm", description="Monte Carlo scenario farm for crypto-crisis systemic risk.")
    term.add_verbosity(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run or resume a sweep (Hydra overrides as arguments)",
                         description="Run or resume a sweep. Example: farm run sweep=smoke "
                         "model=oct2025 runtime.workers=2 store.url=results/x.zarr")
    run.add_argument("--dry-run", action="store_true",
                     help="validate and print cells, blocks, paths, size and time; write nothing")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("-c", "--cfg", choices=("job", "hydra", "all"),
                     help="print the composed config as YAML (as Hydra's --cfg) and exit")
    run.add_argument("-p", "--package", help="with --cfg: only this key (e.g. sweep)")
    run.add_argument("--resolve", action="store_true",
                     help="with --cfg: accepted as in Hydra (the config is always resolved)")
    run.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. sweep=smoke seed=3"
                     ).completer = _complete_overrides
    run.set_defaults(func=cmd_run)

    status = sub.add_parser("status", help="blocks done/failed and the config of a store")
    status.add_argument("store", type=term.store_arg, help="path or URL of the cube")
    status.add_argument("--verify", action="store_true",
                        help="read every chunk; name each unreadable or missing one (exit 1)")
    status.set_defaults(func=cmd_status)
    repair = sub.add_parser("repair", help="mark blocks with bad chunks pending and rebuild "
                            "a lost status from the data")
    repair.add_argument("store", type=term.store_arg, help="path or URL of the cube")
    repair.set_defaults(func=cmd_repair)

    report = sub.add_parser("report", help="write a self-contained HTML report of a cube")
    report.add_argument("store", type=term.store_arg, help="path or URL of the cube")
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

    cal = sub.add_parser("calibrate", help="history-match the model to the episodes in "
                         "waves of farm sweeps (conf/calibration/; resumable)")
    cal.add_argument("--quick", action="store_true", help="conf/calibration/quick.yaml")
    cal.add_argument("--loo", action="store_true", help="leave-one-episode-out: is each "
                     "episode inside the band predicted without it?")
    cal.add_argument("--no-report", action="store_true", help="skip calibration.html")
    cal.add_argument("--no-progress", action="store_true", help="no progress bar")
    cal.add_argument("overrides", nargs="*", help="calibration.KEY=VALUE and farm overrides")
    cal.set_defaults(func=cmd_calibrate)
    cluster_parsers(sub)  # submit / jobs / logs / stop (farm/cli_cluster.py)
    explore_parser(sub)  # explore (farm/cli_explore.py)
    for name, cmd in sub.choices.items():  # -v/-q after the subcommand too; Hydra's -m
        term.add_verbosity(cmd, top=False)
        if name in ("run", "calibrate", "submit"):
            term.refuse_multirun(cmd)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; a closed stdout pipe (``farm status X | head -1``) ends it
    quietly with status 141, as the Python docs recommend (stdout then goes to devnull)."""
    try:
        try:
            return _main(argv)
        finally:
            sys.stdout.flush()  # a closed pipe shows here, not at the interpreter's exit
    except BrokenPipeError:
        term.stdout_to_devnull()
        return EXIT_PIPE


def _main(argv: Sequence[str] | None) -> int:
    global _QUIET
    parser = build_parser()
    if argv is None:  # a shell asking for completions (argcomplete) exits here
        import argcomplete

        argcomplete.autocomplete(parser)
    args = parser.parse_args(argv)
    if args.verbose and args.quiet:
        parser.error("-v/--verbose and -q/--quiet together: choose one")
    _QUIET = args.quiet
    log_to_stderr(logging.INFO if args.verbose else logging.WARNING)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        raise  # main(): quietly, status 141
    except _user_errors() as exc:
        if os.environ.get("FARM_DEBUG"):
            raise
        print(f"farm: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt:
        print("farm: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except Exception as exc:  # unexpected: one line unless debugging
        if os.environ.get("FARM_DEBUG"):
            raise
        print(f"farm: failed: {type(exc).__name__}: {one_line(exc)} (FARM_DEBUG=1 for a "
              "traceback)", file=sys.stderr)
        return EXIT_FAIL


if __name__ == "__main__":
    sys.exit(main())
