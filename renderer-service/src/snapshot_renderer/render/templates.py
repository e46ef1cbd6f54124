"""The Jinja2 environment: one per worker process, autoescaping everything, strict undefined."""

from __future__ import annotations

import re
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, TemplateNotFound

from snapshot_renderer.errors import BadJob

_TEMPLATE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
TEMPLATE_SUFFIX = ".html.j2"


def build_environment(templates_dir: Path) -> Environment:
    """A sandbox-free but escape-everything environment over the bundled templates."""
    return Environment(
        loader=FileSystemLoader(str(templates_dir)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        auto_reload=False,
    )


def get_template(env: Environment, name: str) -> Template:
    """The template a job names (``snapshot`` → ``snapshot.html.j2``); unknown is a bad job."""
    if not _TEMPLATE_NAME.match(name):
        raise BadJob(f"invalid template name {name[:80]!r}")
    try:
        return env.get_template(name + TEMPLATE_SUFFIX)
    except TemplateNotFound as exc:
        raise BadJob(f"unknown template {name!r}") from exc
