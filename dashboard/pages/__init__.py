"""Dash pages (registered with dash.register_page; each module owns its layout and callbacks)."""
