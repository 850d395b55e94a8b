"""The README's commands work as written: every `farm run` example of its Sweeps block,
run after `make demo`, would create, resume or finish its own store, never be refused
(checked with --dry-run after a real demo run, in a scratch working directory)."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FARM = str(REPO / ".venv" / "bin" / "farm")


def _sweeps_block() -> list[list[str]]:
    text = (REPO / "README.md").read_text()
    block = text[text.index("## Sweeps"):]
    block = block[block.index("```bash") + 7:]
    block = block[:block.index("```")]
    commands = []
    for line in block.splitlines():
        code = line.split("#", 1)[0].strip()
        if code.startswith("farm run"):
            commands.append(shlex.split(code)[2:])
    return commands


def test_the_sweeps_block_has_the_examples():
    commands = _sweeps_block()
    assert len(commands) >= 8
    assert ["--dry-run"] in commands


@pytest.mark.slow
def test_every_readme_run_example_after_make_demo_is_accepted(tmp_path):
    demo = subprocess.run([FARM, "run", "-q", "sweep=default"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=900)
    assert demo.returncode == 0, demo.stderr
    for args in _sweeps_block():
        dry = [*args] if "--dry-run" in args else ["--dry-run", *args]
        out = subprocess.run([FARM, "run", *dry], cwd=tmp_path, capture_output=True,
                             text=True, timeout=300)
        assert out.returncode == 0, (args, out.stderr)
        store = re.search(r"store    : (.*)", out.stdout).group(1)
        assert "refused" not in store, (args, store)
