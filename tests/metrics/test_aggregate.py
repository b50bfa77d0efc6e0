import numpy as np
import pytest
from scipy import stats

from mrisr.metrics.aggregate import summarise


def test_summarise_matches_scipy():
    vals = [30.1, 31.5, 29.8, 32.0, 30.7]
    s = summarise(vals)
    assert s["n"] == 5
    assert s["mean"] == pytest.approx(np.mean(vals))
    assert s["std"] == pytest.approx(np.std(vals, ddof=1))
    lo, hi = stats.t.interval(0.95, 4, loc=np.mean(vals), scale=stats.sem(vals))
    assert s["ci95"] == pytest.approx([lo, hi])


def test_summarise_single_and_empty():
    assert summarise([2.0]) == {"n": 1, "mean": 2.0, "std": None, "ci95": None}
    assert summarise([float("inf"), 1.0])["ci95"] is None
    with pytest.raises(ValueError):
        summarise([])
