"""`make bench` finds uv as the Makefile does: on PATH, else ~/.local/bin/uv (where
`make env` installs it when PATH has none), so radCAD is not skipped with "uv not found"."""

from __future__ import annotations

import os

from benchmarks.radcad_bench import find_uv


def _executable(path, mode=0o755):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(mode)
    return str(path)


def test_uv_in_local_bin_is_found_when_path_has_none(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    home = tmp_path / "home"
    uv = _executable(home / ".local" / "bin" / "uv")
    assert find_uv(path=str(empty), home=home) == uv


def test_uv_on_path_comes_first(tmp_path):
    home = tmp_path / "home"
    _executable(home / ".local" / "bin" / "uv")
    on_path = _executable(tmp_path / "bin" / "uv")
    assert find_uv(path=os.pathsep.join([str(tmp_path / "none"), str(tmp_path / "bin")]),
                   home=home) == on_path


def test_no_uv_or_a_non_executable_one_is_none(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    home = tmp_path / "home"
    assert find_uv(path=str(empty), home=home) is None
    _executable(home / ".local" / "bin" / "uv", mode=0o644)
    assert find_uv(path=str(empty), home=home) is None
