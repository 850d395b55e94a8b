"""The cluster subcommands of the ``farm`` CLI: submit / jobs / logs / stop.

Part of the command line (farm/cli.py registers them with :func:`cluster_parsers`);
:mod:`farm.run.submit` talks to the Ray Jobs API and writes to the streams given here.
"""

from __future__ import annotations

import argparse
import sys

from farm.terminal import SafeStream

__all__ = ["cluster_parsers"]


# ---- clusters: submit / jobs / logs / stop (farm.run.submit talks to the Ray Jobs API)
def _address_arg(parser: argparse.ArgumentParser) -> None:
    from farm.run.submit import DEFAULT_ADDRESS

    parser.add_argument(
        "--address", default=None,
        help=f"Ray dashboard URL (default: $RAY_ADDRESS, else {DEFAULT_ADDRESS})")


def _cmd_submit(args: argparse.Namespace) -> int:
    from farm.run.submit import submit

    return submit(list(args.overrides), address=args.address, follow=args.follow,
                  working_dir=args.working_dir, env_names=args.env or (),
                  out=SafeStream(sys.stdout), err=sys.stderr)


def _cmd_jobs(args: argparse.Namespace) -> int:
    from farm.run.submit import list_jobs

    return list_jobs(args.address, out=sys.stdout)


def _cmd_logs(args: argparse.Namespace) -> int:
    from farm.run.submit import logs

    return logs(args.job_id, args.address, args.follow, out=SafeStream(sys.stdout),
                err=sys.stderr)  # the job's own output: its control characters escaped


def _cmd_stop(args: argparse.Namespace) -> int:
    from farm.run.submit import stop

    return stop(args.job_id, args.address, out=sys.stdout)


def cluster_parsers(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "submit", help="run `farm run [overrides]` on a Ray cluster (Ray Jobs API)",
        description="Submit `farm run runtime=cluster OVERRIDES` to a running Ray cluster "
        "(runtime=cluster is added; another runtime is refused); the working directory "
        "travels as the job's runtime environment. Prints the job id.")
    _address_arg(p)
    p.add_argument("--follow", action="store_true",
                   help="stream the job's logs; exit 0 if it succeeded, else 1")
    p.add_argument("--working-dir", default=".",
                   help="directory shipped to the cluster (default: .)")
    p.add_argument("--env", action="append", metavar="NAME",
                   help="also pass this (non-secret) environment variable's value")
    p.add_argument("overrides", nargs="*",
                   help="Hydra overrides for `farm run` (e.g. sweep=smoke store.url=s3://...)")
    p.set_defaults(func=_cmd_submit)
    p = subparsers.add_parser("jobs", help="list the cluster's jobs")
    _address_arg(p)
    p.set_defaults(func=_cmd_jobs)
    p = subparsers.add_parser("logs", help="print (or follow) a job's logs")
    p.add_argument("job_id")
    _address_arg(p)
    p.add_argument("--follow", "-f", action="store_true", help="stream until the job ends")
    p.set_defaults(func=_cmd_logs)
    p = subparsers.add_parser("stop", help="stop a running job")
    p.add_argument("job_id")
    _address_arg(p)
    p.set_defaults(func=_cmd_stop)
