"""Generate the model's config files and parameter tables from :mod:`kernels.paramspec`.

``kernels.paramspec.SPECS`` declares every model parameter once. From it this
module writes ``conf/model/baseline.yaml`` (every parameter, its default, unit and
description), ``conf/model/oct2025.yaml`` (only what the episode changes, on top of
``baseline`` through Hydra's defaults list) and the parameter table of
``docs/model.md``::

    .venv/bin/python -m farm.plan.modelyaml          # rewrite the files
    .venv/bin/python -m farm.plan.modelyaml --check  # exit 1 if any differs

``tests/farm/test_config.py`` fails while the files and ``kernels.paramspec`` disagree.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

from kernels import params as kp
from kernels.paramspec import SECTIONS, SPECS

__all__ = ["format_float", "model_files", "params_table", "write_model_files"]

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = ROOT / "conf"
MODEL_DOC = ROOT / "docs" / "model.md"
T_DOF_DEFAULT = 4
TABLE_START, TABLE_END = "<!-- params-table -->", "<!-- /params-table -->"


def format_float(v: float) -> str:
    """YAML text of a float that OmegaConf reads back exactly (``.nan``, ``8.0e+08``)."""
    v = float(v)
    if math.isnan(v):
        return ".nan"
    if math.isinf(v):
        return ".inf" if v > 0 else "-.inf"
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
        for digits in range(17):  # shortest mantissa that round-trips
            text = f"{v:.{digits}e}"
            if float(text) == v:
                break
        mant, exp = text.split("e")
        mant = mant.rstrip("0") if "." in mant else mant
        mant = mant + "0" if mant.endswith(".") else mant
        mant = mant if "." in mant else mant + ".0"
        return f"{mant}e{exp[0]}{exp[1:].lstrip('0').rjust(2, '0')}"
    return repr(v)


def _value_text(value) -> str:
    if isinstance(value, tuple | list):
        return "[" + ", ".join(format_float(x) for x in value) + "]"
    return format_float(value)


def baseline_yaml() -> str:
    """``conf/model/baseline.yaml``: every parameter with its default, unit and range."""
    out = [
        "# The neutral calibration: leverage 1 (the state of October 2025), correlation 0.5,",
        "# no Fed put, the Basel regime (integration 0), a modest trigger jump.",
        "# Generated from kernels/paramspec.py by `python -m farm.plan.modelyaml`; do not edit.",
        "# Each line: value  # unit, allowed range: description (docs/model.md explains).",
    ]
    section = None
    for name, spec in SPECS.items():
        if spec.section != section:
            section = spec.section
            out.append(f"# --- {SECTIONS[section]}")
        out.append(f"{name}: {_value_text(spec.default)}  # {spec.unit}, {spec.range}: "
                   f"{spec.description}")
    out.append("# --- Student-t degrees of freedom of the shocks (a static shape; not sweepable)")
    out.append(f"t_dof: {T_DOF_DEFAULT}  # integer in [3, 1000]")
    return "\n".join(out) + "\n"


def oct2025_yaml() -> str:
    """``conf/model/oct2025.yaml``: ``baseline`` plus what the 10-11 Oct 2025 episode changes."""
    out = [
        "# The 10-11 October 2025 episode: baseline plus what the day changes (the late-2025",
        "# BTC-Nasdaq correlation and the tariff headline as the trigger jump).",
        "# Generated from kernels/params.py (OCT2025) by `python -m farm.plan.modelyaml`;",
        "# do not edit.",
        "defaults:",
        "  - baseline",
        "  - _self_",
        "",
    ]
    for name, value in kp.OCT2025.items():
        spec = SPECS[name]
        out.append(f"{name}: {_value_text(value)}  # {spec.unit}: {spec.description} "
                   f"(baseline {_value_text(spec.default)})")
    return "\n".join(out) + "\n"


def params_table() -> str:
    """The Markdown tables of docs/model.md section 10, one per section."""
    out: list[str] = []
    section = None
    for name, spec in SPECS.items():
        if spec.section != section:
            section = spec.section
            out += ["", f"**{SECTIONS[section]}**", "",
                    "| parameter | default | unit | range | meaning |", "|---|---|---|---|---|"]
        default = _value_text(spec.default).replace(".nan", "NaN")
        out.append(f"| `{name}` | {default} | {spec.unit} | {spec.range} | {spec.description} |")
    return "\n".join(out).strip() + "\n"


def _with_table(text: str, table: str) -> str:
    start, end = text.index(TABLE_START), text.index(TABLE_END)
    return text[: start + len(TABLE_START)] + "\n\n" + table + "\n" + text[end:]


def model_files(conf_dir: Path = CONF_DIR, doc: Path = MODEL_DOC) -> dict[Path, str]:
    """Every generated file and its expected text."""
    return {
        Path(conf_dir) / "model" / "baseline.yaml": baseline_yaml(),
        Path(conf_dir) / "model" / "oct2025.yaml": oct2025_yaml(),
        Path(doc): _with_table(Path(doc).read_text(), params_table()),
    }


def write_model_files(conf_dir: Path = CONF_DIR, doc: Path = MODEL_DOC) -> list[Path]:
    """Rewrite the generated files; return their paths."""
    written = []
    for path, text in model_files(conf_dir, doc).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        log.info("wrote %s", path)
        written.append(path)
    return written


def stale_files(conf_dir: Path = CONF_DIR, doc: Path = MODEL_DOC) -> list[Path]:
    """Generated files whose text differs from what :func:`model_files` would write."""
    return [path for path, text in model_files(conf_dir, doc).items()
            if not path.exists() or path.read_text() != text]


def main(argv: list[str] | None = None) -> int:
    """Command line: regenerate (default) or ``--check`` the generated files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, exit 1 on drift")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.check:
        stale = stale_files()
        for path in stale:
            log.error("%s is stale: run python -m farm.plan.modelyaml", path)
        return 1 if stale else 0
    write_model_files()
    return 0


if __name__ == "__main__":
    sys.exit(main())
