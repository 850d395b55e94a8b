"""What the ``farm`` CLI writes to the terminal: control characters escaped, one-line errors,
an argument parser that takes options anywhere and reports a mistake in one line.

Only :mod:`farm.cli` imports this module. Text that comes from a store (its attributes,
its failure messages) or from a user (config values, paths, arguments) may hold terminal
escape sequences, carriage returns or bidirectional overrides; :func:`safe_text` shows
them as ``\\x1b``, ``\\r``, ``\\u202e`` instead of letting the terminal act on them.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import re
import sys
import time
import unicodedata
from typing import Any, NoReturn, TextIO

__all__ = ["FarmArgumentParser", "Progress", "SafeFormatter", "SafeStream", "add_verbosity",
           "config_yaml", "log_to_stderr", "one_line", "refuse_multirun", "refuse_os_error",
           "safe_text", "stdout_to_devnull", "store_arg", "store_os_error"]

_NAMED = {"\t": "\\t", "\r": "\\r", "\n": "\\n"}


def _escape(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def safe_text(text: object, *, multiline: bool = False) -> str:
    """``text`` with every character of Unicode category C (control, format, surrogate,
    private use, unassigned) escaped; ``\\n`` is kept when ``multiline`` is true."""
    s = str(text)
    if s.isprintable():  # fast path: nothing of category C (nor Z other than space)
        return s
    return "".join(
        ch if (ch == "\n" and multiline) or unicodedata.category(ch)[0] != "C" else _escape(ch)
        for ch in s)


_SGR = re.compile(r"\x1b\[[0-9;]*m")  # colour codes: dropped from remote logs, harmless


class SafeStream:
    """A text stream wrapper for output that comes from elsewhere (a cluster job's logs):
    colour codes are dropped, ``\n``, ``\r`` (progress bars) and ``\t`` kept, every other
    control character escaped (:func:`safe_text`)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        clean = "\t".join("\r".join(safe_text(part, multiline=True) for part in chunk.split("\r"))
                          for chunk in _SGR.sub("", text).split("\t"))
        return self.stream.write(clean)

    def flush(self) -> None:
        self.stream.flush()


def one_line(text: object) -> str:
    """``text`` as one terminal line: whitespace runs (newlines included) become one space,
    then every remaining control character is escaped."""
    return safe_text(" ".join(str(text).split()))


class SafeFormatter(logging.Formatter):
    """A log formatter whose output has its control characters escaped (log messages can
    carry config values and store attributes); tracebacks keep their line breaks."""

    def format(self, record: logging.LogRecord) -> str:
        return safe_text(super().format(record), multiline=True)


def log_to_stderr(level: int) -> None:
    """``logging.basicConfig`` on stderr with :class:`SafeFormatter` (a no-op when the root
    logger has handlers already, as under pytest)."""
    handler = logging.StreamHandler()
    handler.setFormatter(SafeFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])


class FarmArgumentParser(argparse.ArgumentParser):
    """argparse with two changes for the farm:

    - a subcommand's options may come anywhere among its positional arguments
      (``farm run sweep=smoke --dry-run seed=1``): its arguments are parsed with
      :meth:`argparse.ArgumentParser.parse_known_intermixed_args` where its positionals
      allow it;
    - a usage mistake is one line on stderr, ``farm: error: ... (farm CMD -h for help)``,
      with exit status 2, like every other user error of the farm.
    """

    _intermixing = False

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        if self._intermixing or not self._can_intermix():
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False

    def _can_intermix(self) -> bool:
        return not any(a.nargs in (argparse.PARSER, argparse.REMAINDER)
                       for a in self._get_positional_actions())

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"farm: error: {one_line(message)} ({self.prog} -h for help)\n")
        sys.exit(2)


def add_verbosity(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """``-v/--verbose`` and ``-q/--quiet`` on ``parser``: the top-level parser holds the
    defaults (False), each subcommand's parser sets them only when given, so they work
    before or after the subcommand (``farm -v run ...``, ``farm run -v ...``)."""
    default = False if top else argparse.SUPPRESS
    parser.add_argument("-v", "--verbose", action="store_true", default=default,
                        help="log at INFO level")
    parser.add_argument("-q", "--quiet", action="store_true", default=default,
                        help="warnings and errors only: no progress bar, no notes")


class _RefuseMultirun(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):  # type: ignore[override]
        parser.error(f"{option_string} is Hydra's multirun, which the farm does not use "
                     "(the farm sweeps itself): put the values in sweep.axes.NAME=[v1,v2,...]")


def refuse_multirun(parser: argparse.ArgumentParser) -> None:
    """Hydra's ``-m/--multirun`` on a subcommand that takes overrides: a one-line usage
    error (exit status 2) saying how the farm sweeps, not "unrecognized arguments"."""
    parser.add_argument("-m", "--multirun", nargs=0, action=_RefuseMultirun,
                        help=argparse.SUPPRESS)


def store_arg(text: str) -> str:
    """argparse type of a STORE argument: a usage error (exit status 2) when empty."""
    if not text.strip():
        raise argparse.ArgumentTypeError("the store is an empty path; give a path or URL")
    return text


class Progress:
    """The run's progress bar: tqdm on stderr, cells done / total, paths per second, ETA.
    On resume it starts from the cells already done; the rate counts this session only."""

    def __init__(self, total_cells: int, done_cells: int, paths_per_cell: int, *,
                 enabled: bool = True):
        from tqdm import tqdm

        self.paths_per_cell = paths_per_cell
        self.start = time.perf_counter()
        self.cells_now = 0
        self.failed = 0
        self.bar = tqdm(total=total_cells, initial=done_cells, unit="cell", file=sys.stderr,
                        disable=not enabled, dynamic_ncols=True, smoothing=0.1,
                        desc="cells", mininterval=0.5)

    def update(self, cells: int, failed: int = 0) -> None:
        self.cells_now += cells
        self.failed += failed
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        rate = self.cells_now * self.paths_per_cell / elapsed
        post = {"paths/s": f"{rate:,.0f}"}
        if self.failed:
            post["failed"] = str(self.failed)
        self.bar.set_postfix(post, refresh=False)
        self.bar.update(cells + failed)

    def close(self) -> None:
        self.bar.close()


def config_yaml(cfg: Any, package: str | None = None) -> str:
    """The composed config (or its key ``package``, headed ``# @package KEY`` as Hydra
    does) as YAML, for ``farm run --cfg job``; ConfigError for a key it does not have."""
    from omegaconf import OmegaConf

    from farm.errors import ConfigError

    node = OmegaConf.select(cfg, package, default=None) if package else cfg
    if node is None:
        raise ConfigError("--package", package, "a key of the composed config "
                          f"({', '.join(map(str, cfg))}), e.g. sweep or model.kappa")
    text = OmegaConf.to_yaml(node) if OmegaConf.is_config(node) else f"{node}\n"
    return (f"# @package {package}\n" if package else "") + text.rstrip("\n")


def stdout_to_devnull() -> None:
    """After a BrokenPipeError on stdout: point it at devnull, so that the interpreter's
    last flush at exit raises nothing (the Python docs' recipe for SIGPIPE)."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no file descriptor (captured output)
        pass


# OS errors that say a path of the user's cannot be used (the user's to fix), by errno
_PATH_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EEXIST,
                errno.EISDIR, errno.ENOSPC, errno.EDQUOT, errno.ENAMETOOLONG, errno.ELOOP,
                errno.ENOENT}
_PATH_ERRORS = (FileNotFoundError, FileExistsError, PermissionError, NotADirectoryError,
                IsADirectoryError)


def _related(filename: object, where: str) -> bool:
    """Whether ``filename`` (an OS error's path) is ``where``, inside it, one of its parent
    directories or a sibling of it (the store's lock record); an unnamed path counts."""
    if filename is None or "://" in where:
        return True
    try:
        path = os.path.abspath(os.fsdecode(filename))  # type: ignore[arg-type]
    except TypeError:
        return True
    target = os.path.abspath(where)
    parent = os.path.dirname(target)
    return (path == target or path.startswith(target + os.sep) or os.path.dirname(path) == parent
            or target.startswith(path.rstrip(os.sep) + os.sep))


def store_os_error(exc: BaseException, where: str) -> str | None:
    """The OS reason (``Read-only file system: '/mnt/ro/x.zarr'``) when ``exc`` is an
    :class:`OSError` that makes the user's path ``where`` (a store, a report file) unusable:
    read-only, no permission, missing, a file where a directory should be, a full disk.
    ``None`` for any other error, which stays a failure of the farm (exit status 1)."""
    if not isinstance(exc, OSError):
        return None
    if exc.errno not in _PATH_ERRNOS and not (exc.errno is None
                                              and isinstance(exc, _PATH_ERRORS)):
        return None
    if not _related(exc.filename, where):
        return None
    reason = exc.strerror or str(exc)
    return f"{reason}: {exc.filename!r}" if exc.filename and exc.strerror else reason


def refuse_os_error(exc: OSError, what: str, where: str) -> None:
    """Raise a one-line :class:`farm.errors.StoreRefusedError` (exit status 2) for an OS
    error on the user's path ``where`` (:func:`store_os_error`): ``what`` is e.g. ``cannot
    write the store``. Return for any other OS error (the caller re-raises it: exit 1)."""
    from farm.errors import StoreRefusedError

    reason = store_os_error(exc, where)
    if reason is not None:
        raise StoreRefusedError(f"{what} {where}: {reason}") from exc


def open_sound_cube(store: str, allow_incomplete: bool = False):
    """The cube at ``store`` for ``farm report`` / ``farm explore``: refused in one line when
    a chunk is unreadable or missing (:func:`farm.store.verify.require_sound`) or the OS
    refuses the path; opened with :func:`analysis.open_cube`."""
    from analysis import open_cube
    from farm.store.verify import require_sound

    try:
        require_sound(store)
        return open_cube(store, allow_incomplete=allow_incomplete)
    except OSError as exc:
        refuse_os_error(exc, "cannot read the store", store)
        raise
