"""Small layout builders shared by the pages."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import html

from dashboard.figures import STATUS_STYLE

STATUS_MEANINGS = {
    "valid": "RT lies within the peak's prediction interval (or outside it, but not significantly once many "
    "peaks are tested): the identity fits its retention time.",
    "outlier": "RT lies outside the prediction interval and the false-discovery-controlled q-value is at most "
    "alpha: the claimed identity is doubtful.",
    "fragment": "An in-source fragment of a larger co-eluting peak (see 'fragment of'); its volume is added to "
    "that peak and the model does not judge it.",
    "unassessed": "No prediction is possible, for example a ceramide or modification no anchor covers, or too "
    "few anchors for a model; the reason says which.",
    "invalid": "The row failed validation; the reason lists each bad cell.",
}


FLAG_MEANINGS = {
    "extra_peak": "another peak of a name whose main (largest) peak carries the identity verdict; judged against "
    "where the name's isomers can elute, with its offset from the main peak.",
    "main_peak_outlier": "the name's main peak is an identity outlier, so this peak's identity is doubtful too.",
    "extrapolated": "the composition lies outside the anchors' range, or its prefix or head group has no anchor; "
    "the reason says what is extrapolated and from what, and the interval is widened for it.",
    "series_ambiguous": "a modification learned from one prefix whose anchors could be either isomer; the interval "
    "spans both readings.",
    "anchor_inconsistent": "MS/MS-confirmed, but its RT disagrees with the model fitted without it.",
    "excluded_anchor": "an anchor the screening left out of the fit (the others contradict it).",
    "anchor_as_fragment": "MS/MS-confirmed, but a co-eluting larger peak explains it as an in-source fragment.",
    "fragment_review": "a co-eluting larger composition exists but is too small to explain this peak; look at both.",
    "oac_inconsistent": "an O-acetylated species elutes earlier than its base.",
    "logp_inconsistent": "the Log P given departs from the additive pattern of its prefix.",
}


def status_badge(status: str, count: int | None = None) -> html.Span:
    text = status if count is None else f"{status} {count}"
    return html.Span(text, className=f"badge status-badge status-{status} me-1")


def summary_card(label: str, value, hint: str | None = None, card_id: str | None = None) -> dbc.Col:
    body = [html.Div(value, className="value"), html.Div(label, className="label")]
    if hint:
        body.append(html.Div(hint, className="small text-muted"))
    card = dbc.Card(dbc.CardBody(body), className="summary-card h-100")
    return dbc.Col(card, xs=6, md=4, lg=2, className="mb-2", id=card_id or "")


def status_explanation() -> dbc.Accordion:
    items = [
        html.Li([status_badge(status), " ", STATUS_MEANINGS[status]], className="mb-1")
        for status in STATUS_STYLE
        if status in STATUS_MEANINGS
    ]
    flags = html.Ul([html.Li([html.B(name.replace("_", " ")), ": ", text]) for name, text in FLAG_MEANINGS.items()])
    return dbc.Accordion(
        [
            dbc.AccordionItem(
                [html.Ul(items, className="list-unstyled"), html.H6("Flags"), flags],
                title="What the statuses and flags mean",
            )
        ],
        start_collapsed=True,
        className="mb-3",
    )


def error_alert(message: str, title: str = "Something went wrong") -> dbc.Alert:
    return dbc.Alert([html.Strong(title + ": "), message], color="danger", dismissable=True)
