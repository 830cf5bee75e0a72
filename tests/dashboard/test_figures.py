"""Figures built from real and synthetic analysis results, and from the edge cases."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
import pytest

from analysis.params import Parameters
from analysis.pipeline import run_file
from analysis.result import STATUSES
from analysis.synthetic import generate_extract
from dashboard import figures
from dashboard.figures import (
    FONT_FAMILY,
    NO_DATA_MESSAGE,
    STATUS_STYLE,
    WEBGL_THRESHOLD,
    coefficients,
    predicted_vs_observed,
    residuals,
    rt_vs_logp,
    status_counts,
)

ROW_FIGURES = {
    "rt_vs_logp": rt_vs_logp,
    "predicted_vs_observed": predicted_vs_observed,
    "residuals": residuals,
}


@pytest.fixture(scope="module")
def porcine(porcine_csv: Path):
    return run_file(porcine_csv, filename=porcine_csv.name)


@pytest.fixture(scope="module")
def synthetic():
    extract = generate_extract(3000, seed=1)
    return run_file(extract.to_csv_bytes(), filename="synthetic.csv")


@pytest.fixture(scope="module")
def one_head_group(porcine_csv: Path):
    table = pd.read_csv(porcine_csv)
    only_gd1 = table[table["Name"].str.match(r"GD1[(+ ]")]
    return run_file(only_gd1.to_csv(index=False).encode(), filename="gd1.csv")


@pytest.fixture(scope="module")
def all_invalid():
    csv = b"Name,RT,Volume,Log P,Anchor\nGX1(36:1;O2),abc,10,1,T\nGD1(36:1;O2),-1,10,1,F\n"
    return run_file(csv, filename="bad.csv", params=Parameters(on_invalid_rows="skip"))


def marker_traces(fig: go.Figure) -> list:
    return [trace for trace in fig.data if "markers" in (trace.mode or "")]


def status_traces(fig: go.Figure) -> list:
    return [trace for trace in fig.data if (trace.legendgroup or "").startswith("status:")]


def traces_in(fig: go.Figure, group: str) -> list:
    return [trace for trace in fig.data if trace.legendgroup == group]


def plotted_rows(traces) -> list[int]:
    return [int(point[0]) for trace in traces for point in trace.customdata]


def message_of(fig: go.Figure) -> str:
    return " ".join(annotation.text for annotation in fig.layout.annotations)


# --- status style ------------------------------------------------------------------------------


def test_status_style_gives_every_status_its_own_colour_symbol_and_label():
    assert set(STATUS_STYLE) == set(STATUSES)
    styles = list(STATUS_STYLE.values())
    for field in ("colour", "symbol", "label"):
        values = [getattr(style, field) for style in styles]
        assert len(set(values)) == len(values), field
    assert all(re.fullmatch(r"#[0-9A-Fa-f]{6}", style.colour) for style in styles)
    colour, symbol, label = STATUS_STYLE["outlier"]  # unpacks like a plain tuple
    assert (colour, symbol, label) == (STATUS_STYLE["outlier"].colour, "x", "Outlier")


# --- RT vs Log P on the real sample --------------------------------------------------------------


def test_faceted_plot_has_one_panel_per_head_group(porcine):
    fig = rt_vs_logp(porcine.rows)
    heads = set(porcine.rows["head"].dropna())
    assert len({trace.xaxis for trace in fig.data}) == len(heads)
    titles = {annotation.text.split(" · ")[0] for annotation in fig.layout.annotations}
    assert heads <= titles
    # RT is shared by every panel so head groups compare on one scale.
    y_axes = [key for key in fig.layout if key.startswith("yaxis")]
    assert len(y_axes) == len(heads)  # no empty frames in unused grid cells
    assert len({fig.layout[key].matches or key.replace("axis", "") for key in y_axes}) == 1


def test_every_plottable_peak_is_drawn_once_with_its_row_number(porcine):
    fig = rt_vs_logp(porcine.rows)
    drawn = plotted_rows(status_traces(fig))
    assert sorted(drawn) == sorted(porcine.rows.loc[porcine.rows["status"] != "invalid", "row"])


def test_without_log_p_the_main_plot_puts_carbon_number_across_with_every_peak_at_its_own(porcine):
    rows = porcine.rows.assign(log_p=float("nan"))
    fig = rt_vs_logp(rows)
    assert fig.layout.title.text == "RT vs carbon number by head group"
    assert any(a.text == "carbon number" for a in fig.layout.annotations)  # the shared x title
    drawn = plotted_rows(status_traces(fig))
    assert sorted(drawn) == sorted(rows.loc[rows["status"] != "invalid", "row"])
    carbons = rows.set_index("row")["carbons"]
    for trace in status_traces(fig):
        assert [carbons[row[0]] for row in trace.customdata] == list(trace.x), trace.name
    assert rt_vs_logp(porcine.rows).layout.title.text == "RT vs Log P by head group"


@pytest.mark.parametrize("name", ROW_FIGURES)
def test_customdata_first_column_is_the_row_of_that_point(porcine, name):
    fig = ROW_FIGURES[name](porcine.rows, selected_rows=[1, 3])
    by_row = porcine.rows.set_index("row")
    y_column = {"rt_vs_logp": "rt", "predicted_vs_observed": "rt", "residuals": "residual"}[name]
    x_column = "log_p" if name == "rt_vs_logp" else "predicted_rt"
    for trace in marker_traces(fig):
        assert trace.customdata is not None, trace.name
        assert len(trace.customdata) == len(trace.x), trace.name
        rows = [int(point[0]) for point in trace.customdata]
        assert set(rows) <= set(by_row.index), trace.name
        if trace.legendgroup in {"interval", "identity"}:
            continue
        # The row number must be the row drawn at that position, not just any row.
        assert list(trace.x) == pytest.approx(by_row.loc[rows, x_column].tolist()), trace.name
        assert list(trace.y) == pytest.approx(by_row.loc[rows, y_column].tolist()), trace.name


def test_each_status_present_has_one_legend_entry_with_its_symbol(porcine):
    fig = rt_vs_logp(porcine.rows)
    present = set(porcine.rows["status"]) - {"invalid"}
    legend = [trace for trace in status_traces(fig) if trace.showlegend is not False]
    assert sorted(trace.name for trace in legend) == sorted(STATUS_STYLE[status].label for status in present)
    for trace in status_traces(fig):
        status = trace.legendgroup.removeprefix("status:")
        assert trace.marker.symbol == STATUS_STYLE[status].symbol
        assert trace.marker.color == STATUS_STYLE[status].colour
        assert trace.name == STATUS_STYLE[status].label


def test_legend_lists_statuses_before_overlays(porcine):
    fig = rt_vs_logp(porcine.rows)
    status_ranks = [trace.legendrank for trace in status_traces(fig)]
    other_ranks = [trace.legendrank for trace in fig.data if not trace.legendgroup.startswith("status:")]
    assert max(status_ranks) < min(other_ranks)


def test_one_head_group_view_shows_only_that_group(porcine):
    fig = rt_vs_logp(porcine.rows, head="GM1")
    rows = porcine.rows
    expected = rows.loc[(rows["head"] == "GM1") & (rows["status"] != "invalid"), "row"]
    assert sorted(plotted_rows(status_traces(fig))) == sorted(expected)
    assert {trace.xaxis for trace in fig.data} == {"x"}
    assert "GM1" in fig.layout.title.text
    assert fig.layout.uirevision == "rt_vs_logp/GM1"


def test_unknown_head_group_gives_a_message_not_an_error(porcine):
    fig = rt_vs_logp(porcine.rows, head="GX9")
    assert not fig.data
    assert NO_DATA_MESSAGE in message_of(fig)


def test_anchors_are_ringed(porcine):
    fig = rt_vs_logp(porcine.rows)
    ringed = plotted_rows(traces_in(fig, "anchor"))
    assert sorted(ringed) == sorted(porcine.rows.loc[porcine.rows["anchor"].astype(bool), "row"])
    assert all(trace.marker.symbol == "circle-open" for trace in traces_in(fig, "anchor"))


def test_prediction_bars_span_each_rows_interval_and_skip_fragments(porcine):
    fig = rt_vs_logp(porcine.rows)
    by_row = porcine.rows.set_index("row")
    bars = traces_in(fig, "interval")
    rows = plotted_rows(bars)
    judged = by_row[(by_row["status"] != "fragment") & by_row["predicted_rt"].notna()]
    assert sorted(rows) == sorted(judged.index)
    for trace in bars:
        trace_rows = [int(point[0]) for point in trace.customdata]
        expected = by_row.loc[trace_rows]
        assert list(trace.y) == pytest.approx(expected["predicted_rt"].tolist())
        assert [y + up for y, up in zip(trace.y, trace.error_y.array, strict=True)] == pytest.approx(
            expected["pi_high"].tolist()
        )
        assert [y - down for y, down in zip(trace.y, trace.error_y.arrayminus, strict=True)] == pytest.approx(
            expected["pi_low"].tolist()
        )


def test_hover_shows_name_rt_prediction_interval_residual_and_reason(porcine):
    fig = rt_vs_logp(porcine.rows, head="GD1")
    outliers = traces_in(fig, "status:outlier")[0]
    point = outliers.customdata[0]
    row = porcine.rows.set_index("row").loc[int(point[0])]
    assert point[1] == row["name"]
    assert f"{row['rt']:.3f} min" in point[3]
    assert f"predicted {row['predicted_rt']:.3f} min" in point[4]
    assert f"{row['pi_low']:.3f}–{row['pi_high']:.3f}" in point[4]
    assert f"{row['residual']:+.3f}" in point[5]
    assert row["reason"].split()[0] in point[6]
    for index in range(len(point)):
        assert f"customdata[{index}]" in outliers.hovertemplate


def test_hover_text_escapes_markup_in_names(porcine):
    rows = porcine.rows.copy()
    rows.loc[rows.index[0], "name"] = "<b>GD1</b>(34:1;O2)"
    fig = rt_vs_logp(rows, head="GD1")
    names = [point[1] for trace in status_traces(fig) for point in trace.customdata]
    assert "&lt;b&gt;GD1&lt;/b&gt;(34:1;O2)" in names
    assert not any("<b>" in name for name in names)


# --- fragment links ----------------------------------------------------------------------------


def segments(fig: go.Figure) -> set[tuple[float, float, float, float]]:
    found = set()
    for trace in traces_in(fig, "links"):
        xs, ys = list(trace.x), list(trace.y)
        for start in range(0, len(xs), 3):
            assert xs[start + 2] is None and ys[start + 2] is None  # a gap after every segment
            found.add((xs[start], ys[start], xs[start + 1], ys[start + 1]))
    return found


def test_every_fragment_is_linked_to_its_precursor(porcine):
    fig = rt_vs_logp(porcine.rows)
    rows = porcine.rows.set_index("row")
    fragments = rows[rows["fragment_of"].notna()]
    assert len(fragments) > 0
    drawn = segments(fig)
    for row, fragment in fragments.iterrows():
        precursor = rows.loc[int(fragment["fragment_of"])]
        assert (fragment["log_p"], fragment["rt"], precursor["log_p"], precursor["rt"]) in drawn, row
    assert all(trace.line.width <= 1 for trace in traces_in(fig, "links"))


def test_links_to_other_head_groups_end_in_a_marked_peak(porcine):
    fig = rt_vs_logp(porcine.rows, head="GD1")
    rows = porcine.rows.set_index("row")
    elsewhere = plotted_rows(traces_in(fig, "linked"))
    assert elsewhere
    assert (rows.loc[elsewhere, "head"] != "GD1").all()
    # Each such peak is the far end of a link drawn in this panel.
    ends = {(x, y) for x0, y0, x, y in segments(fig)} | {(x0, y0) for x0, y0, _, _ in segments(fig)}
    assert all((rows.loc[row, "log_p"], rows.loc[row, "rt"]) in ends for row in elsewhere)


def test_no_links_when_there_are_no_fragments(porcine):
    rows = porcine.rows[porcine.rows["status"] != "fragment"]
    fig = rt_vs_logp(rows)
    assert not traces_in(fig, "links")
    assert not traces_in(fig, "linked")


# --- selection ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ROW_FIGURES)
def test_selected_rows_are_ringed_larger_than_other_markers(porcine, name):
    judged_rows = porcine.rows.loc[porcine.rows["status"].isin(["valid", "outlier"]), "row"].tolist()
    chosen = judged_rows[:2]
    fig = ROW_FIGURES[name](porcine.rows, selected_rows=chosen)
    highlighted = traces_in(fig, "selected")
    assert sorted(plotted_rows(highlighted)) == sorted(chosen)
    biggest_other = max(trace.marker.size for trace in marker_traces(fig) if trace.legendgroup != "selected")
    assert all(trace.marker.size > biggest_other for trace in highlighted)


@pytest.mark.parametrize("name", ROW_FIGURES)
def test_no_highlight_without_selection_and_zoom_survives_selection(porcine, name):
    plain = ROW_FIGURES[name](porcine.rows)
    selected = ROW_FIGURES[name](porcine.rows, selected_rows=[1])
    assert not traces_in(plain, "selected")
    assert plain.layout.uirevision and plain.layout.uirevision == selected.layout.uirevision


def test_selection_outside_the_shown_head_group_is_ignored(porcine):
    gm1_row = int(porcine.rows.loc[porcine.rows["head"] == "GM1", "row"].iloc[0])
    fig = rt_vs_logp(porcine.rows, head="GD1", selected_rows=[gm1_row])
    assert not traces_in(fig, "selected")


# --- model diagnostics -------------------------------------------------------------------------


def test_predicted_vs_observed_plots_judged_peaks_with_identity_line(porcine):
    fig = predicted_vs_observed(porcine.rows)
    judged = porcine.rows[porcine.rows["status"].isin(["valid", "outlier"])]
    assert sorted(plotted_rows(status_traces(fig))) == sorted(judged["row"])
    (identity,) = traces_in(fig, "identity")
    assert list(identity.x) == list(identity.y)
    assert identity.x[0] <= judged["rt"].min() and identity.x[-1] >= judged["rt"].max()
    assert "(min)" in fig.layout.xaxis.title.text and "(min)" in fig.layout.yaxis.title.text


def test_residual_bars_are_the_interval_around_zero(porcine):
    fig = residuals(porcine.rows)
    by_row = porcine.rows.set_index("row")
    (bars,) = traces_in(fig, "interval")
    expected = by_row.loc[[int(point[0]) for point in bars.customdata]]
    assert set(bars.y) == {0.0}
    assert list(bars.error_y.array) == pytest.approx((expected["pi_high"] - expected["predicted_rt"]).tolist())
    assert list(bars.error_y.arrayminus) == pytest.approx((expected["predicted_rt"] - expected["pi_low"]).tolist())
    assert any(shape.y0 == 0 and shape.y1 == 0 for shape in fig.layout.shapes)
    assert "(min)" in fig.layout.yaxis.title.text


def test_status_counts_match_the_summary(porcine):
    fig = status_counts(porcine.summary)
    (bars,) = fig.data
    counts = porcine.summary["counts"]
    assert list(bars.x) == [STATUS_STYLE[status].label for status in STATUSES]
    assert list(bars.y) == [counts[status] for status in STATUSES]
    assert list(bars.marker.color) == [STATUS_STYLE[status].colour for status in STATUSES]


def test_coefficients_show_every_term_but_the_intercept_with_its_interval(porcine):
    report = porcine.models[0]
    fig = coefficients(report)
    terms, offsets = fig.data
    expected = [term for term in report["coefficients"] if term["term"] != "intercept"]
    assert list(terms.y) == [term["label"] for term in expected]
    assert [x + up for x, up in zip(terms.x, terms.error_x.array, strict=True)] == pytest.approx(
        [term["ci95_high"] for term in expected]
    )
    assert [x - down for x, down in zip(terms.x, terms.error_x.arrayminus, strict=True)] == pytest.approx(
        [term["ci95_low"] for term in expected]
    )
    assert len(offsets.x) == len(report["head_group_offsets"])
    assert "intercept" in fig.layout.title.subtitle.text
    assert "min" in fig.layout.xaxis.title.text


def test_coefficients_without_a_fitted_model_say_why(all_invalid):
    fig = coefficients(all_invalid.models[0])
    assert not fig.data
    assert "no fitted model" in message_of(fig)
    assert "no fitted model" in message_of(coefficients(None))


# --- edge cases --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ROW_FIGURES)
@pytest.mark.parametrize("kind", ["no rows", "no columns"])
def test_empty_input_gives_a_message_figure(porcine, name, kind):
    rows = porcine.rows.iloc[0:0] if kind == "no rows" else pd.DataFrame()
    fig = ROW_FIGURES[name](rows)
    assert not fig.data
    assert NO_DATA_MESSAGE in message_of(fig)
    assert fig.layout.uirevision
    json.loads(fig.to_json())


@pytest.mark.parametrize("name", ROW_FIGURES)
def test_only_invalid_rows_give_a_message_figure(all_invalid, name):
    assert set(all_invalid.rows["status"]) == {"invalid"}
    fig = ROW_FIGURES[name](all_invalid.rows, selected_rows=[1])
    assert not fig.data
    assert NO_DATA_MESSAGE in message_of(fig)


def test_status_counts_of_invalid_and_empty_runs(all_invalid):
    (bars,) = status_counts(all_invalid.summary).data
    assert dict(zip(bars.x, bars.y, strict=True))["Invalid"] == 2
    assert NO_DATA_MESSAGE in message_of(status_counts({"counts": {status: 0 for status in STATUSES}}))
    assert NO_DATA_MESSAGE in message_of(status_counts(None))


def test_unassessed_only_rows_still_plot_rt_but_not_the_model_views(porcine):
    rows = porcine.rows.assign(status="unassessed", predicted_rt=float("nan"), pi_low=float("nan"))
    rows = rows.assign(pi_high=float("nan"), residual=float("nan"), fragment_of=pd.NA)
    fig = rt_vs_logp(rows)
    assert [trace.name for trace in status_traces(fig) if trace.showlegend] == ["Unassessed"]
    assert not traces_in(fig, "interval")
    assert NO_DATA_MESSAGE in message_of(predicted_vs_observed(rows))
    assert NO_DATA_MESSAGE in message_of(residuals(rows))


def test_one_head_group_input_gives_a_single_panel(one_head_group):
    rows = one_head_group.rows
    assert set(rows["head"]) == {"GD1"}
    for fig in (rt_vs_logp(rows), rt_vs_logp(rows, head="GD1")):
        assert {trace.xaxis for trace in fig.data} == {"x"}
        assert sorted(plotted_rows(status_traces(fig))) == sorted(rows["row"])
    assert status_traces(predicted_vs_observed(rows))


def test_figures_leave_their_input_unchanged(porcine):
    before = porcine.rows.copy(deep=True)
    for build in ROW_FIGURES.values():
        build(porcine.rows, selected_rows=[1, 2])
    pd.testing.assert_frame_equal(porcine.rows, before)


# --- scale and rendering -----------------------------------------------------------------------


def test_small_inputs_use_svg_scatter(porcine):
    for build in ROW_FIGURES.values():
        fig = build(porcine.rows)
        assert fig.data and all(isinstance(trace, go.Scatter) for trace in fig.data)


def test_large_inputs_use_webgl(synthetic):
    rows = synthetic.rows
    assert len(rows) > WEBGL_THRESHOLD
    row_numbers = set(rows["row"])
    for build in ROW_FIGURES.values():
        fig = build(rows, selected_rows=rows["row"].head(3))
        assert fig.data and all(isinstance(trace, go.Scattergl) for trace in fig.data)
        assert set(plotted_rows(marker_traces(fig))) <= row_numbers
    # One head group of a large run is small again: SVG keeps every symbol crisp.
    small_head = rows["head"].value_counts().idxmin()
    assert all(isinstance(trace, go.Scatter) for trace in rt_vs_logp(rows, head=small_head).data)


def test_every_figure_serialises_with_template_title_and_revision(porcine, synthetic):
    built = [
        *(build(porcine.rows, selected_rows=[1]) for build in ROW_FIGURES.values()),
        rt_vs_logp(porcine.rows, head="GD1"),
        rt_vs_logp(synthetic.rows),
        status_counts(porcine.summary),
        coefficients(porcine.models[0]),
    ]
    revisions = set()
    for fig in built:
        data = json.loads(fig.to_json())
        assert data["layout"]["title"]["text"]
        assert data["layout"]["uirevision"]
        assert data["layout"]["template"]["layout"]["font"]["family"] == FONT_FAMILY
        revisions.add(data["layout"]["uirevision"])
    assert len(revisions) >= 5  # each view keeps its own zoom


def test_template_is_a_copy_and_the_plotly_registry_is_untouched():
    assert figures.TEMPLATE.layout.font.family == FONT_FAMILY
    assert pio.templates["plotly_white"].layout.font.family != FONT_FAMILY
