"""Validation in three jobs: :mod:`~fgsim.validation.cases` (masks and the frozen case lists),
:mod:`~fgsim.validation.measure` (GPU timing), :mod:`~fgsim.validation.report` (predictions vs measurements)."""
