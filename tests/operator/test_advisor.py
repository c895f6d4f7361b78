"""The terminal report `brain-ai-operator recommend` prints."""

from __future__ import annotations

import numpy as np

from brainai_operator.advisor import format_report, sparkline
from brainai_operator.durations import Window
from brainai_operator.rightsizing import recommend
from tests.operator.advisor_helpers import BALANCED, usage_factory

usage = usage_factory()


def test_report_and_sparkline() -> None:
    assert sparkline(np.array([0, 1, 2, 3, 4, 5, 6, 7])) == "▁▂▃▄▅▆▇█"
    assert sparkline(np.array([np.nan, 1.0])) == " █"
    u = usage()
    rec = recommend(u, BALANCED, Window.of("1h"), "t")
    assert rec is not None
    text = format_report(("prod", "a"), BALANCED, rec, u, width=40)
    assert "prod/a" in text and "Reasons:" in text and "requests/s" in text
    assert "cpu request" in text and "500m" in text
