"""Bayesian history matching in waves, run by the farm itself (``farm calibrate``).

It sits between the CLI and :mod:`farm.run`: every wave is an ordinary sweep (a CSV
design of parameter draws x episodes, run by :func:`farm.run.sweep.run_sweep` into
``<out>/wave-K.zarr``), so a wave resumes after a crash and runs on a cluster like any
sweep. :mod:`farm.calibrate.config` reads the settings, :mod:`~farm.calibrate.sampling`
draws the points, :mod:`~farm.calibrate.emulator` screens them,
:mod:`~farm.calibrate.waves` runs and scores a wave, :mod:`~farm.calibrate.engine`
runs the waves and keeps the state, :mod:`~farm.calibrate.outputs` and
:mod:`~farm.calibrate.report` write the results. Nothing here prints.
"""
