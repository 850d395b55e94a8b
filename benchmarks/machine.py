"""Facts about the machine and the software the numbers were measured with."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata as _md
import os
import platform
import subprocess


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags() -> str:
    """The widest SIMD the CPU offers (what bounds the kernel's peak)."""
    try:
        with open("/proc/cpuinfo") as fh:
            flags = next((ln for ln in fh if ln.startswith("flags")), "").split()
    except OSError:
        return "unknown"
    for name in ("avx512f", "avx2", "avx", "sse2"):
        if name in flags:
            return name + (" + fma" if "fma" in flags else "")
    return "unknown"


def cpu_mhz() -> float:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("cpu MHz"):
                    return float(line.split(":", 1)[1])
    except (OSError, ValueError):
        pass
    return float("nan")


def memory_gib() -> float:
    try:
        import psutil

        return psutil.virtual_memory().total / 2**30
    except ImportError:  # pragma: no cover
        return float("nan")


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("jax", "jaxlib", "numpy", "ray", "zarr", "xarray", "hydra-core"):
        try:
            out[pkg] = _md.version(pkg)
        except _md.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def accelerators() -> list[str]:
    """Non-CPU JAX devices (empty on a CPU-only machine)."""
    import jax

    return [f"{d.platform}: {d.device_kind}" for d in jax.devices() if d.platform != "cpu"]


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


def facts() -> dict:
    return {
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "simd": cpu_flags(),
        "mhz": cpu_mhz(),
        "cores": os.cpu_count(),
        "memory_gib": round(memory_gib(), 1),
        "platform": platform.platform(),
        "versions": versions(),
        "git_commit": git_commit(),
        "accelerators": accelerators(),
        "load_at_start": load_average(),
    }
