"""Without matplotlib, plotting says which extra installs it."""

import sys

import pytest

from speechbrain_sercl.reporting.plots import PlottingUnavailable, pyplot


def test_missing_matplotlib_names_the_analysis_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(
        PlottingUnavailable, match=r"speechbrain-sercl\[analysis\]"
    ):
        pyplot()
