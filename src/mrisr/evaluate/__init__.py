"""Evaluation: which cases an input holds (:mod:`.cases`), the protocols that score them (:mod:`.protocol`:
given pairs, or degrade -> upscale -> score) and their results (:mod:`.results`: summary, table, files).

Sits above :mod:`mrisr.infer` (models are run through it) and below :mod:`mrisr.report` (which draws what
an evaluation hands to its ``on_case`` callback); the metrics themselves are pure functions in
:mod:`mrisr.metrics`.
"""

from mrisr.evaluate.cases import case_mask, case_name, list_cases, on_reference_grid
from mrisr.evaluate.protocol import CaseVolumes, OnCase, ScoreOptions, evaluate_pairs, evaluate_protocol
from mrisr.evaluate.results import columns, format_table, summarise_rows, write_results

__all__ = ["CaseVolumes", "OnCase", "ScoreOptions", "case_mask", "case_name", "columns", "evaluate_pairs",
           "evaluate_protocol", "format_table", "list_cases", "on_reference_grid", "summarise_rows",
           "write_results"]
