"""Interval widths from backtest errors, and coverage scored on held-out windows."""

from __future__ import annotations

import pandas as pd

from app.forecasting import conformal


def test_each_window_is_scored_with_the_widths_of_the_others() -> None:
    # Series a: errors 1 in windows 1 and 2, 5 in window 3; series b: window 1 only.
    frame = pd.DataFrame(
        {
            "unique_id": ["a", "a", "a", "b"],
            "window": [1, 2, 3, 1],
            "err": [1.0, 1.0, 5.0, 2.0],
            "y": [1.0, 0.0, 3.0, 2.0],
        }
    )
    hits = conformal.held_out_hits(frame)
    a = hits[hits["unique_id"] == "a"]
    # Windows 1 and 2 are calibrated on {1, 5} (95%: 5, 80%: 5): inside. Window 3 on
    # {1, 1}: its error 5 is outside, though calibrated on itself it would be inside.
    assert a["in_80"].tolist() == [True, True, False]
    assert a["in_95"].tolist() == [True, True, False]
    # One window only: calibrated on itself.
    assert hits.loc[hits["unique_id"] == "b", "in_80"].tolist() == [True]
    assert hits["y"].tolist() == frame.sort_values("window")["y"].tolist()


def test_widths_are_the_higher_quantile_of_the_errors() -> None:
    frame = pd.DataFrame({"unique_id": ["a"] * 10, "err": [float(i) for i in range(10)]})
    w = conformal.widths(frame)
    assert (w.loc["a", 80], w.loc["a", 95]) == (8.0, 9.0)
