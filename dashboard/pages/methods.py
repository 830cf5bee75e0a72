"""Methods page (/methods): docs/methods.md, so every number on the results page is explained in-app."""

from pathlib import Path

import dash
from dash import dcc, html

dash.register_page(__name__, path="/methods", name="Methods", title="Methods · Ganglioside RT check", order=2)

METHODS = Path(__file__).resolve().parents[2] / "docs" / "methods.md"


def layout(**_query):
    text = METHODS.read_text(encoding="utf-8") if METHODS.exists() else "The methods document is missing."
    return html.Div(dcc.Markdown(text, className="methods"), id="page-methods", style={"maxWidth": "60rem"})
