"""The web: Dash pages, layout builders, figures, the WebSocket routes and the JSON API."""
