"""Validation, split by job (compatibility module re-exporting the public names):

* :mod:`fgsim.validation.cases` — deterministic masks and the committed calibration / development / test lists;
* :mod:`fgsim.validation.measure` — GPU timing (CUDA graphs, interleaved rounds, green contexts);
* :mod:`fgsim.validation.report` — predictions of measured rows, errors per axis, REPORT.md.
"""

from __future__ import annotations

from fgsim.validation.cases import (
    CALIB_STRUCTURES,
    CASE_FIELDS,
    STRUCTURES,
    Case,
    calibration_cases,
    case_counts,
    case_from_row,
    case_mask,
    development_cases,
    frozen_test_cases,
    load_case_list,
    tiny_cases,
    trace_cases,
    write_case_lists,
)
from fgsim.validation.measure import RESULT_FIELDS, measure_cases
from fgsim.validation.report import (
    metrics,
    predict_rows,
    read_results,
    row_config,
    score,
    select_rows,
    within_case_spearman,
    write_report,
)

#: columns of a results CSV
CSV_FIELDS = RESULT_FIELDS

__all__ = [
    "CALIB_STRUCTURES", "CASE_FIELDS", "CSV_FIELDS", "RESULT_FIELDS", "STRUCTURES", "Case", "calibration_cases",
    "case_counts", "case_from_row", "case_mask", "development_cases", "load_case_list", "measure_cases", "metrics",
    "predict_rows", "read_results", "row_config", "score", "select_rows", "frozen_test_cases", "tiny_cases",
    "trace_cases",
    "within_case_spearman", "write_case_lists", "write_report",
]
