"""Write ``conf/model/*.yaml`` from :mod:`kernels.params` (keeps Hydra and the kernel in step).

``kernels.params`` is the single source of the model's defaults; the Hydra model
files carry every field explicitly so that a user reads them in one place.
After changing a default or adding a field in ``kernels/params.py`` run::

    .venv/bin/python -m farm.modelyaml          # rewrites conf/model/{baseline,oct2025}.yaml
    .venv/bin/python -m farm.modelyaml --check  # exit 1 if the files differ in value

``tests/test_config.py`` fails while the files and ``kernels.params`` disagree.
"""

from __future__ import annotations

import argparse
import inspect
import logging
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path

from kernels import params as kp

__all__ = ["MODEL_PRESETS", "format_float", "model_yaml", "write_model_yaml"]

log = logging.getLogger(__name__)

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"

# preset name -> (factory, title line)
MODEL_PRESETS: dict[str, tuple[Callable[[], kp.ModelParams], str]] = {
    "baseline": (
        kp.baseline,
        "Neutral calibration: leverage 1, correlation 0.5, no Fed put, no integration.",
    ),
    "oct2025": (
        kp.oct2025,
        "The 10-11 October 2025 episode: BTC-Nasdaq correlation ~0.8, larger tariff trigger.",
    ),
}


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


def _field_comments() -> tuple[dict[str, str], dict[str, str]]:
    """(field -> trailing comment, field -> section heading) parsed from ModelParams."""
    comments: dict[str, str] = {}
    sections: dict[str, str] = {}
    pending = None
    for line in inspect.getsource(kp.ModelParams).splitlines():
        m = re.match(r"\s*# --- (.*?) -*\s*$", line)
        if m:
            pending = m.group(1)
            continue
        m = re.match(r"\s*(\w+): [^=]+=\s*(.*?)(?:\s+#\s*(.*))?$", line)
        if m:
            comments[m.group(1)] = m.group(3) or ""
            if pending:
                sections[m.group(1)] = pending
                pending = None
    return comments, sections


def model_yaml(params: kp.ModelParams, title: str, t_dof: int = 4) -> str:
    """The text of a ``conf/model`` file holding every field of ``params``."""
    comments, sections = _field_comments()
    out = [
        f"# {title}",
        "# Every ModelParams field (units in kernels/params.py); regenerate with",
        "# `python -m farm.modelyaml`. tests/test_config.py checks them against kernels.params.",
        "",
    ]
    for name in kp.ModelParams._fields:
        if name in sections:
            out.append(f"# --- {sections[name]}")
        val = getattr(params, name)
        if name in kp.VECTOR_FIELDS:
            text = "[" + ", ".join(format_float(x) for x in val) + "]"
        else:
            text = format_float(val)
        comment = comments.get(name, "")
        out.append(f"{name}: {text}" + (f"  # {comment}" if comment else ""))
    out.append("# --- Student-t degrees of freedom of the shocks (a static shape; not sweepable)")
    out.append(f"t_dof: {int(t_dof)}")
    return "\n".join(out) + "\n"


def write_model_yaml(conf_dir: Path = CONF_DIR) -> list[Path]:
    """Rewrite ``conf/model/<preset>.yaml`` for every preset; return the paths."""
    written = []
    for name, (factory, title) in MODEL_PRESETS.items():
        path = Path(conf_dir) / "model" / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(model_yaml(factory(), title))
        log.info("wrote %s", path)
        written.append(path)
    return written


def _check(conf_dir: Path) -> int:
    from omegaconf import OmegaConf

    bad = 0
    for name, (factory, _) in MODEL_PRESETS.items():
        path = Path(conf_dir) / "model" / f"{name}.yaml"
        loaded = OmegaConf.to_container(OmegaConf.load(path))
        expected = OmegaConf.to_container(OmegaConf.create(model_yaml(factory(), "")))
        if repr(loaded) != repr(expected):  # repr: NaN equals NaN
            log.error("%s differs from kernels.params.%s()", path, name)
            bad += 1
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    """Command line: regenerate (default) or ``--check`` the model files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, exit 1 on drift")
    parser.add_argument("--conf-dir", type=Path, default=CONF_DIR)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.check:
        return _check(args.conf_dir)
    write_model_yaml(args.conf_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
