"""User mistakes never crash the farm: a refusal is exit status 2 with exactly one line on
stderr naming the key, never a traceback, never exit 0 with a number that is not finite.

Two fuzz tests: every scalar model parameter of kernels/paramspec.py with 0, -1, nan,
+-inf, 1e300 and its range's edges just outside (a value the validation accepts is run
through the kernel, whose outputs must all be finite); every key of the schema's top
level, sweep, runtime and store with wrong types, negatives, 0, nan, huge numbers, the
empty string and a string with '/' and control characters. Then one test per defect of
the CLI contract (README "Sweeps", docs/configuration.md "Limits"). Validation runs
through `farm.plan.make_plan` or `farm.cli.main([...])` in-process; a few cases run as
real processes.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import subprocess
import sys
import tempfile
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli
from farm.cli import build_parser
from farm.errors import ConfigError
from farm.plan.limits import (
    MAX_CELL_DRAWS,
    MAX_CELL_PATHS,
    MAX_CELLS,
    MAX_PATHS,
    MAX_STEPS,
    MAX_STORED_PATHS,
)
from kernels.paramspec import SPECS

REPO = Path(__file__).resolve().parents[2]
ESC = "\x1b"
SCALARS = [name for name, spec in SPECS.items() if not spec.is_vector]


def _raw_controls(text: str) -> list[str]:
    """Characters of Unicode category C other than the newline (must never be printed)."""
    return [c for c in text if c != "\n" and unicodedata.category(c)[0] == "C"]


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    """``farm ARGV`` in-process: (exit status, stdout, stderr); nothing raw reaches them."""
    code, out, err = run_cli(capsys, *argv)
    assert not _raw_controls(out) and not _raw_controls(err), (out, err)
    assert "Traceback" not in err, err
    return code, out, err


def assert_refused(code: int, err: str, *needles: str) -> str:
    """Exit 2 with exactly one line on stderr, ``farm: error: ...``, holding every needle."""
    lines = err.splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("farm: error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# ------------------------------------------------------------------ fuzz: model values


def _just_outside(spec) -> list[float]:
    r = spec.range
    lo = float(np.nextafter(r.low, -np.inf)) if r.low_inclusive else r.low
    hi = float(np.nextafter(r.high, np.inf)) if r.high_inclusive else r.high
    return [v for v in (lo, hi) if math.isfinite(v)]


def _just_inside(spec) -> list[float]:
    r = spec.range
    lo = r.low if r.low_inclusive else float(np.nextafter(r.low, np.inf))
    hi = r.high if r.high_inclusive else float(np.nextafter(r.high, -np.inf))
    return [lo, hi]


def _probes(spec) -> list[float]:
    return [0.0, -1.0, math.nan, math.inf, -math.inf, 1e300, *_just_outside(spec)]


def _allowed(spec, value: float) -> bool:
    return spec.range.contains(value) or (math.isnan(value) and spec.nan_allowed)


@pytest.fixture(scope="module")
def model_outcomes(tmp_path_factory):
    """(param, value) -> the ConfigError, or the accepted ModelParams: the validation
    ``make_plan`` starts with (``validate_config``), on one cell (``sweep=single``: the
    model is the only cell, so the per-cell check repeats it)."""
    from farm.plan.compose import compose_config
    from farm.plan.identity import model_values
    from farm.plan.validation import validate_config
    from kernels.params import make_params

    cfg = compose_config(["sweep=single", f"store.url={tmp_path_factory.mktemp('m')}/x"])
    out = {}
    for name in SCALARS:
        spec, default = SPECS[name], cfg.model[name]
        for value in [*_probes(spec), *_just_inside(spec)]:
            cfg.model[name] = value  # one value changed at a time, then restored
            try:
                validate_config(cfg)
                out[name, value] = make_params(model_values(cfg.model))
            except ConfigError as exc:
                out[name, value] = exc
        cfg.model[name] = default
    return out


@pytest.fixture(scope="module")
def kernel_outputs(model_outcomes):
    """(param, value) -> names of the kernel's outputs that are not finite, for every
    accepted value; all accepted cells in one block (cells run one at a time in it)."""
    import jax

    from kernels import simulate_block, stack_params

    accepted = [(k, m) for k, m in model_outcomes.items() if not isinstance(m, Exception)]
    res = simulate_block(stack_params([m for _, m in accepted]), key=jax.random.key(0),
                         n_paths=32, n_steps=12)
    outputs = {**res.stats, **res.probs}
    return {k: [n for n, a in outputs.items() if not np.all(np.isfinite(a[i]))]
            for i, (k, _) in enumerate(accepted)}


@pytest.mark.parametrize("name", SCALARS)
def test_bad_model_values_are_refused_naming_the_key(name, model_outcomes, kernel_outputs):
    spec = SPECS[name]
    for value in _probes(spec):
        got = model_outcomes[name, value]
        if isinstance(got, ConfigError):
            text = str(got)
            assert "\n" not in text and f"model.{name}" in text, (value, text)
            assert "allowed:" in text, text
        else:
            assert _allowed(spec, value), f"model.{name}={value!r} was accepted"
            assert not kernel_outputs[name, value], (value, kernel_outputs[name, value])


@pytest.mark.parametrize("name", SCALARS)
def test_accepted_range_edges_give_finite_numbers(name, model_outcomes, kernel_outputs):
    for value in _just_inside(SPECS[name]):
        got = model_outcomes[name, value]
        if isinstance(got, ConfigError):  # a constraint with another parameter
            assert f"model.{name}" in str(got), str(got)
        else:
            assert not kernel_outputs[name, value], (value, kernel_outputs[name, value])


@pytest.mark.parametrize("name", SCALARS[::12])
def test_bad_model_values_on_the_command_line(name, capsys):
    for value in ("nan", "-inf", "1e+300", repr(_just_outside(SPECS[name])[-1])):
        code, _, err = cli(capsys, "run", "--dry-run", "sweep=single", f"model.{name}={value}")
        if not (value == "nan" and SPECS[name].nan_allowed):
            assert_refused(code, err, f"model.{name}")


# ------------------------------------------------------------------ fuzz: the other keys


def _schema_keys() -> list[tuple[str, type]]:
    """(dotted key, type) of every key of the schema but the model's floats."""
    import typing

    from farm.plan import schema

    keys = [("name", str), ("seed", int), ("model.t_dof", int)]
    for section, cls in (("sweep", schema.SweepConfig), ("runtime", schema.RuntimeConfig),
                         ("store", schema.StoreConfig)):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            tp = hints[f.name]
            inner = [a for a in typing.get_args(tp) if a is not type(None)]
            keys.append((f"{section}.{f.name}", inner[0] if inner else tp))
    return keys


HUGE = "1" + "0" * 30
NASTY = f'"a/b{ESC}[2J\rc"'  # '/', an escape sequence and a carriage return
BAD_VALUES = ["abc", "-1", "0", "nan", "1e300", HUGE, "''", NASTY]
ZERO_OK = {"seed", "runtime.workers", "runtime.max_in_flight", "runtime.retries",
           "sweep.posterior_draws",  # 0: no posterior draws (the default)
           "runtime.block_cells"}  # 0: automatic block size (the default)


def _must_refuse(key: str, tp: type, value: str) -> bool:
    if value == NASTY:  # control characters: never a name, path, URL or choice
        return True
    if tp is int:
        return not (value == "0" and key in ZERO_OK)
    if tp is bool or key in ("sweep.axes", "sweep.method", "sweep.seeding"):
        return True
    if key == "name":
        return value in ("-1", "''")
    if key == "store.url":
        return value == "''"
    return key == "store.endpoint_url" and value != "''"


@pytest.mark.parametrize(("key", "tp"), _schema_keys(), ids=[k for k, _ in _schema_keys()])
def test_bad_values_of_every_key_are_refused_in_one_line(key, tp, capsys):
    for value in BAD_VALUES:
        code, out, err = cli(capsys, "run", "--dry-run", "sweep=single", f"{key}={value}")
        if code == 0:
            assert not _must_refuse(key, tp, value), f"{key}={value!r} was accepted"
            assert out.startswith("dry run:"), out
        else:
            assert_refused(code, err, key)


def test_a_refusal_in_a_real_process_is_one_line(tmp_path):
    """Real processes: a non-UTF-8 CSV, an unknown +key, options after overrides."""
    bad = tmp_path / "latin1.csv"
    bad.write_bytes("leverage\n1\n2\xe9\n".encode("latin-1"))
    for args, key in ((["sweep=csv", f"sweep.csv={bad}", "--dry-run"], "sweep.csv"),
                      (["+sweep.foo=1", "--dry-run", "seed=1"], "sweep.foo")):
        proc = subprocess.run([sys.executable, "-m", "farm.cli", "run", *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
        assert proc.returncode == 2, proc.stderr
        assert_refused(proc.returncode, proc.stderr, key)


# ------------------------------------------------------------------ one test per defect


def test_csv_that_is_not_utf8_is_refused_naming_the_file(tmp_path, capsys):
    bad = tmp_path / "cells.csv"
    bad.write_bytes(b"leverage\n1\n\xff\xfe2\n")
    code, _, err = cli(capsys, "run", "--dry-run", "sweep=csv", f"sweep.csv={bad}")
    assert_refused(code, err, "sweep.csv", str(bad), "UTF-8")


def test_csv_with_a_byte_order_mark_is_read(tmp_path, capsys):
    bom = tmp_path / "excel.csv"
    bom.write_bytes("leverage,correlation\n1,0.5\n2,0.5\n".encode("utf-8-sig"))
    code, out, err = cli(capsys, "run", "--dry-run", "sweep=csv", f"sweep.csv={bom}")
    assert code == 0, err
    assert "cells    : 2" in out and "leverage" in out


SHARES = ["fed_put", "integration", "depth_recovery", "perm_share", "resilience",
          "defi_close_factor", "defi_bonus", "defi_selfref_share", "fund_crypto_btc_share",
          "fund_eq_sale_share", "bank_eq_share", "bank_eq_sale_share", "bank_crypto_btc_share",
          "bank_wholesale_share", "bank_liquid_share", "run_share", "run_discount",
          "channel_perps", "channel_defi", "channel_treasury", "channel_fund_margin",
          "channel_runs", "channel_bank_sales"]
TEN = "[" + ",".join(f"{v / 10:g}" for v in range(10)) + "]"


@pytest.mark.parametrize(("args", "key", "limit"), [
    (["sweep=sobol", "sweep.n_samples=3000000000"], "sweep.n_samples=3000000000",
     f"{MAX_CELLS:,}"),
    (["sweep=lhs", f"sweep.n_samples={MAX_CELLS + 1}"], "sweep.n_samples", f"{MAX_CELLS:,}"),
    # the default 1,440-cell grid with five more axes of ten values: 144 million cells
    ([*(f"sweep.axes.{p}={TEN}" for p in SHARES[3:8])], "sweep.axes", f"{MAX_CELLS:,}"),
    # 2**23 cells (under the cell limit) on 23 axes: 193 million design values
    (["sweep.axes={" + ",".join(f"{p}:[0,1]" for p in SHARES) + "}"], "sweep.axes",
     "50,000,000"),
    (["sweep=lhs", "sweep.n_samples=1000000", "sweep.paths=200000"], "sweep.paths",
     f"{MAX_CELL_PATHS:,}"),
    (["sweep=lhs", "sweep.n_samples=10000", "sweep.paths=200000", "store.paths=true"],
     "sweep.paths", f"{MAX_STORED_PATHS:,}"),
    (["sweep.paths=1000000"], "sweep.paths=1000000", f"{MAX_CELL_DRAWS:,}"),
    ([f"sweep.paths={MAX_PATHS + 1}"], "sweep.paths", f"{MAX_PATHS:,}"),
    ([f"sweep.steps={MAX_STEPS + 1}"], "sweep.steps", f"{MAX_STEPS:,}"),
    (["sweep=sobol", f"sweep.n_samples={MAX_CELLS}"], "sweep.n_samples", "power of two"),
])
def test_a_design_beyond_the_stated_limits_is_refused_up_front(args, key, limit, capsys):
    code, _, err = cli(capsys, "run", "--dry-run", *args)
    assert_refused(code, err, key, limit)


def test_a_large_design_within_the_limits_is_planned(capsys):
    code, out, err = cli(capsys, "run", "--dry-run", "sweep=sobol", "sweep.n_samples=1048576")
    assert code == 0 and "cells    : 1048576" in out, err


@pytest.mark.parametrize(("override", "key", "hint"), [
    ("+foo=1", "foo", None),
    ("++foo=1", "foo", None),
    ("+sweep.foo=1", "sweep.foo", None),
    ("++sweep.path=3", "sweep.path", "did you mean sweep.paths?"),
    ("+model.kapa=0.1", "model.kapa", "did you mean model.kappa?"),
    ("+store.storage_options.anon=true", "store.storage_options", None),
    ("+runtime.worker=2", "runtime.worker", "did you mean runtime.workers?"),
])
def test_unknown_keys_added_with_plus_are_refused(override, key, hint, capsys):
    code, _, err = cli(capsys, "run", "--dry-run", override)
    line = assert_refused(code, err, f"unknown config key {key}")
    assert hint is None or hint in line


@pytest.mark.parametrize("override", [
    "+experiment=fed_put_study",  # docs/configuration.md
    "+sweep.axes.kappa=[0.05,0.1]",
    "++sweep.axes.kappa=[0.05,0.1]",
    "sweep.axes.kappa=[0.05,0.1]",  # docs: "add a fifth axis (no + needed)"
    "++seed=3",
    "++model.kappa=0.2",
])
def test_the_documented_plus_forms_still_work(override, capsys):
    code, out, err = cli(capsys, "run", "--dry-run", override)
    assert code == 0 and out.startswith("dry run:"), err


def test_options_are_accepted_anywhere_on_the_command_line(capsys):
    code, out, err = cli(capsys, "run", "sweep=smoke", "--dry-run", "sweep.paths=32")
    assert code == 0, err
    assert "paths    : 32 per cell" in out
    parser = build_parser()
    a = parser.parse_args(["-v", "run", "a=1", "--no-progress", "b=2", "--dry-run", "c=3"])
    assert a.overrides == ["a=1", "b=2", "c=3"] and a.dry_run and a.no_progress and a.verbose
    a = parser.parse_args(["submit", "sweep=smoke", "--follow", "seed=1", "--address", "h"])
    assert a.overrides == ["sweep=smoke", "seed=1"] and a.follow and a.address == "h"
    a = parser.parse_args(["report", "--no-fan", "x.zarr", "--level", "0.3"])
    assert a.store == "x.zarr" and a.no_fan and a.level == 0.3
    a = parser.parse_args(["logs", "-f", "raysubmit_1"])
    assert a.job_id == "raysubmit_1" and a.follow
    code, _, err = cli(capsys, "run", "sweep=smoke", f"--bogus{ESC}[2J", "seed=1")
    assert_refused(code, err, "--bogus\\x1b[2J")


@pytest.mark.parametrize("name", ["a/b", "../x", "..", "-x", ".hidden", "''", "'a b'",
                                  "x" * 101, f'"a{ESC}b"', '"a\tb"'])
def test_name_must_be_a_safe_file_name(name, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(capsys, "run", "--dry-run", "sweep=single", f"name={name}")
    assert_refused(code, err, "name=", "letters, digits")
    assert not list(tmp_path.iterdir())


def test_a_safe_name_is_accepted(capsys):
    code, out, err = cli(capsys, "run", "--dry-run", "sweep=single", "name=Run_2.v-3")
    assert code == 0 and "results/Run_2.v-3.zarr" in out, err


@pytest.mark.parametrize("cmd", ["status", "report"])
@pytest.mark.parametrize("what", ["missing", "file", "empty dir"])
def test_status_and_report_of_what_is_no_cube_exit_2(cmd, what, tmp_path, capsys):
    target = tmp_path / "x.zarr"
    if what == "file":
        target.write_text("not a cube")
    elif what == "empty dir":
        target.mkdir()
    code, _, err = cli(capsys, cmd, str(target))
    assert_refused(code, err, "x.zarr")


def _as_unprivileged_user() -> list[str]:
    """A command prefix that drops root (file permissions do not stop root)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot drop privileges")
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.mark.parametrize("cmd", ["status", "report"])
def test_a_directory_without_read_permission_exits_2(cmd):
    prefix = _as_unprivileged_user()
    base = Path(tempfile.mkdtemp(prefix="farm-noperm-"))
    try:
        base.chmod(0o777)
        store = base / "locked.zarr"
        store.mkdir()
        (store / "zarr.json").write_text("{}")
        store.chmod(0)
        env = {**os.environ, "HOME": str(base), "MPLCONFIGDIR": str(base / "mpl"),
               "PYTHONPATH": str(REPO)}
        proc = subprocess.run([*prefix, sys.executable, "-m", "farm.cli", cmd, str(store)],
                              cwd=base, capture_output=True, text=True, timeout=120, env=env)
        assert_refused(proc.returncode, proc.stderr, str(store), "ermission denied")
    finally:
        store.chmod(0o700)
        shutil.rmtree(base)


def test_a_file_where_the_store_directory_should_be_exits_2(tmp_path, capsys):
    (tmp_path / "afile").write_text("in the way")
    url = tmp_path / "afile" / "x.zarr"
    code, _, err = cli(capsys, "run", "--no-progress", "sweep=single", "sweep.paths=8",
                       f"store.url={url}")
    assert_refused(code, err, f"cannot write the store {url}", "afile")
    assert (tmp_path / "afile").read_text() == "in the way"


def test_status_escapes_control_characters_of_the_store(tmp_path, capsys):
    from farm.plan.compose import compose_config
    from farm.plan.convert import make_plan
    from farm.store.cube import create_cube
    from farm.store.provenance import provenance_attrs

    plan = make_plan(compose_config(["sweep=smoke", f"store.url={tmp_path / 'evil.zarr'}"]))
    sw = plan.sweep
    attrs = provenance_attrs(plan.config_yaml, plan.config_hash, plan.design, sw.seed,
                             sw.seeding, sw.paths, sw.steps)
    attrs["git_commit"] = f"{ESC}]0;owned\x07"
    cube = create_cube(plan.store.url, plan.design, attrs)
    cube.mark_failed(plan.design.block(0), f"boom{ESC}[2J\rfake line\u202e")
    code, out, err = cli(capsys, "status", plan.store.url)
    assert code == 0, err
    assert "\\x1b]0;owned" in out and "boom\\x1b[2J\\rfake line\\u202e" in out


def test_error_lines_escape_what_the_user_typed(capsys, tmp_path):
    path = str(tmp_path / f"x{ESC}[31m.zarr")
    for cmd in ("report", "status"):
        code, _, err = cli(capsys, cmd, path)
        assert_refused(code, err, "\\x1b[31m")


def test_a_jobs_log_output_reaches_the_terminal_with_its_controls_escaped():
    """`farm logs` / `submit --follow` print another machine's output: colour codes are
    dropped, newlines, carriage returns (progress bars) and tabs kept, other controls
    (a title-setting OSC, a bell, a bidi override) escaped."""
    import io

    from farm.terminal import SafeStream

    out = io.StringIO()
    SafeStream(out).write("\x1b[33m(raylet)\x1b[0m ok\tdone\r50%\n\x1b]0;pwned\x07 \u202eevil\n")
    assert out.getvalue() == "(raylet) ok\tdone\r50%\n\\x1b]0;pwned\\x07 \\u202eevil\n"
