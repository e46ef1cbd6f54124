"""Rendering: Jinja2 templates, the confined URL fetcher, the worker pool."""
