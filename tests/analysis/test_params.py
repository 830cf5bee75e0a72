"""Parameter validation (science.md §5)."""

from __future__ import annotations

import pytest

from analysis.errors import ParameterError
from analysis.params import PARAMETER_SPECS, Parameters


def test_defaults_are_those_of_the_contract():
    assert Parameters().to_dict() == {
        "fragment_window": 0.05,
        "fragment_min_precursor_ratio": 1.0,
        "pi_level": 0.95,
        "alpha": 0.05,
        "min_anchors": 5,
        "oac_tolerance": 0.05,
        "on_invalid_rows": "reject",
        "max_rows": 1_000_000,
    }
    assert {spec.name: spec.default for spec in PARAMETER_SPECS} == Parameters().to_dict()


def test_strings_from_a_command_line_or_form_are_converted():
    params = Parameters.from_mapping({"alpha": "0.01", "min_anchors": "8", "on_invalid_rows": " SKIP "})
    assert (params.alpha, params.min_anchors, params.on_invalid_rows) == (0.01, 8, "skip")


@pytest.mark.parametrize(
    "values, words",
    [
        ({"alpha": "abc"}, "alpha: 'abc' is not a number"),
        ({"alpha": 0}, "outside the allowed range (0, 0.5]"),
        ({"alpha": 0.6}, "outside the allowed range"),
        ({"pi_level": 1.0}, "pi_level"),
        ({"fragment_window": -1}, "fragment_window"),
        ({"min_anchors": 2.5}, "whole number"),
        ({"min_anchors": "nan"}, "whole number"),
        ({"max_rows": 0}, "max_rows"),
        ({"alpha": "inf"}, "finite"),
        ({"alpha": True}, "expected a number"),
        ({"on_invalid_rows": "maybe"}, "one of reject, skip"),
        ({"on_invalid_rows": 3}, "on_invalid_rows"),
        ({"fragment_windw": 0.1}, "unknown parameter 'fragment_windw'"),
        ({"alpha": [0.1]}, "expected a number"),
    ],
)
def test_bad_values_are_rejected_with_a_clear_message(values, words):
    with pytest.raises(ParameterError) as error:
        Parameters.from_mapping(values)
    assert words in str(error.value)


def test_several_problems_are_reported_together():
    with pytest.raises(ParameterError) as error:
        Parameters(alpha=2.0, pi_level=0.1)
    assert "alpha" in str(error.value) and "pi_level" in str(error.value)
