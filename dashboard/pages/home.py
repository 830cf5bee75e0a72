"""Upload page (placeholder until the dashboard lands)."""

import dash
from dash import html

dash.register_page(__name__, path="/", name="Upload", order=0)

layout = html.Div([html.H2("Ganglioside RT check"), html.P("Submit peak tables through the API at /api/jobs.")])
