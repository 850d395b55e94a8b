"""Stage 2 of the farm: the result cube on a local disk or an object store (template,
chunk-aligned block writes, status, lock, provenance). Imports :mod:`farm.plan`, never
:mod:`farm.run`."""
