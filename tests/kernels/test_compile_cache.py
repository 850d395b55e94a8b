"""The persistent compilation cache (kernels.compilecache): a second process with the same
shapes compiles nothing and computes the same bits; ``FARM_JAX_CACHE=off`` turns it off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import json, jax, numpy as np
from kernels import simulate_block, stack_params
from kernels.compilecache import COMPILE_COUNTER, cache_dir
from kernels.params import oct2025
cells = [oct2025()._replace(leverage=l) for l in (1.0, 2.5)]
r = simulate_block(stack_params(cells), key=jax.random.key(3), n_paths=64, n_steps=12)
print(json.dumps({**COMPILE_COUNTER, "dir": str(cache_dir()),
                  "p": r.probs["p_systemic"].tolist(), "dd": r.stats["drawdown_btc"].tolist()}))
"""


def _run(cache: str) -> dict:
    env = {**os.environ, "FARM_JAX_CACHE": cache}
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_second_process_loads_the_kernel_instead_of_compiling(tmp_path):
    cache = tmp_path / "jax-cache"
    first, second = _run(str(cache)), _run(str(cache))
    assert (first["compiled"], first["loaded"]) == (1, 0)
    assert (second["compiled"], second["loaded"]) == (0, 1)  # compiles_second_run = 0
    assert first["simulate_block"] == second["simulate_block"] == 1  # traced either way
    assert any(cache.rglob("*")), "the cache folder holds the executable"
    assert first["p"] == second["p"] and first["dd"] == second["dd"]  # same bits


def test_the_cache_can_be_turned_off(tmp_path):
    first, second = _run("off"), _run("off")
    assert first["dir"] == "None"
    assert (first["compiled"], second["compiled"]) == (1, 1)
    assert second["loaded"] == 0
