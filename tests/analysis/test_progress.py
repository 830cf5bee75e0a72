"""Progress reports (science.md §6)."""

from __future__ import annotations

from analysis.pipeline import run_file
from analysis.synthetic import generate_extract


def record(source, **kwargs):
    events = []
    run_file(source, progress=lambda percent, step, message: events.append((percent, step, message)), **kwargs)
    return events


def test_steps_come_in_order_with_their_percentages(porcine_csv):
    events = record(porcine_csv)
    first_percent = {}
    for percent, step, _ in events:
        first_percent.setdefault(step, percent)
    assert first_percent == {"loading": 5, "validating": 10, "fragments": 25, "model": 50, "outliers": 70, "checks": 80}
    percents = [percent for percent, _, _ in events]
    assert percents == sorted(percents)
    assert max(percents) < 90  # saving and done belong to the caller
    assert all(message for _, _, message in events)


def test_long_steps_report_from_inside():
    table = generate_extract(60_000, seed=1).to_csv_bytes()  # several blocks of the fragment search
    events = record(table, filename="big.csv")
    inside_fragments = [p for p, step, _ in events if step == "fragments" and 25 < p < 50]
    inside_validation = [p for p, step, _ in events if step == "validating" and 10 < p < 25]
    assert len(inside_fragments) >= 2
    assert len(inside_validation) >= 1
