"""HTML reports rendered from Jinja2 templates shipped as package data."""
