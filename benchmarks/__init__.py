"""Reproducible benchmarks of the kernel, the NumPy reference, radCAD and the farm.

``python -m benchmarks.run [--quick]`` (``make bench`` / ``make bench-quick``)
measures everything side by side in one run on this machine and writes
``BENCHMARKS.md`` and ``benchmarks/results.json``.
"""
