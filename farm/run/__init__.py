"""Stage 3 of the farm: run a plan into its store (Ray dispatch of blocks, progress,
clusters, job submission). Imports :mod:`farm.plan` and :mod:`farm.store`."""
