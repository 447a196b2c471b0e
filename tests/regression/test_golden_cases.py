"""The regression cases under pytest: one test per case, marked ``regression``, in the default run.

Each test compares EVERY quantity of its case with the stored golden (ncmargin/regression/goldens) and,
on failure, lists all mismatching quantities with both values and the tolerance (docs/theory.md §11).
Same code path as ``ncmargin regress``.
"""

import warnings

import pytest

from ncmargin import regression


@pytest.mark.regression
@pytest.mark.parametrize("name", regression.case_names())
def test_case_matches_golden(name):
    res = regression.run_case(name)
    assert res.ok, "\n" + res.failure_report()
    assert res.rows, f"case {name} compared no quantity"
    if res.new:  # a coverage gap, not a drift: visible in the -ra summary, not a failure
        warnings.warn(res.failure_report(), stacklevel=1)
