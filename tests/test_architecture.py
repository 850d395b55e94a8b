"""The farm's shape holds: import contracts, one-pass planning, no config objects later.

The contracts live in pyproject.toml ([tool.importlinter]) and docs/architecture.md
explains them; this test runs them, so a change that breaks the one-way flow fails here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_hold():
    """lint-imports: farm stages one way, kernels and analysis without farm, only the CLI
    importing analysis, no Hydra/OmegaConf after the plan, no import cycle anywhere."""
    exe = Path(sys.executable).parent / "lint-imports"
    proc = subprocess.run([str(exe), "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "BROKEN" not in proc.stdout and "6 kept, 0 broken" in proc.stdout


def test_farm_modules_stay_small():
    """No module of farm/ over 300 lines: one job per module."""
    big = {str(p.relative_to(ROOT)): n for p in (ROOT / "farm").rglob("*.py")
           if (n := len(p.read_text().splitlines())) > 300}
    assert not big, big


def test_a_run_validates_and_builds_its_design_once(tmp_path, monkeypatch, ray_local):
    """`farm run` converts the config into a plan once: one validation, one design."""
    from conftest import FARM_SMALL
    from farm import cli
    from farm.plan import convert

    calls = {"validate": 0, "design": 0}

    def counted(name, fn):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(convert, "validate_config", counted("validate", convert.validate_config))
    monkeypatch.setattr(convert, "make_design", counted("design", convert.make_design))
    assert cli.main(["run", "--no-progress", *FARM_SMALL,
                     f"store.url={tmp_path / 'once.zarr'}"]) == 0
    assert calls == {"validate": 1, "design": 1}


@pytest.mark.parametrize("package", ["farm.store", "farm.run"])
def test_stages_after_the_plan_do_not_load_omegaconf(package):
    """Importing every module of the store and run stages loads no config library."""
    modules = [".".join(p.relative_to(ROOT).with_suffix("").parts)
               for p in (ROOT / package.replace(".", "/")).glob("*.py")]
    probe = ("import sys\n" + "".join(f"import {m}\n" for m in modules)
             + "print(sorted(m for m in sys.modules if m.split('.')[0] in "
               "('omegaconf', 'hydra')))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                         text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stdout
