"""The Jinja2 environment: one per worker process, autoescaping everything, strict undefined."""

from __future__ import annotations

import re
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, TemplateNotFound
from jinja2.ext import Extension

from snapshot_renderer.errors import BadJob

_TEMPLATE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
TEMPLATE_SUFFIX = ".html.j2"
# A line break and the indentation around it, between a tag or a block tag and the next one.
_INDENTATION = re.compile(r"(>|%\})[ \t]*\n\s*(?=<|\{%)")


class StripIndentation(Extension):
    """Drops the template's own line breaks and indentation between tags when it is loaded.

    WeasyPrint makes a box of every whitespace text node it meets inside a line, and lays out
    and then discards the rest: ~10% of a render for whitespace nobody sees. Only the template
    source is touched, never a rendered value; a space that shows (between two inline tags) is
    written as a space on one line and stays.
    """

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        return _INDENTATION.sub(r"\1", source)


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
        extensions=[StripIndentation],
    )


def get_template(env: Environment, name: str) -> Template:
    """The template a job names (``snapshot`` → ``snapshot.html.j2``); unknown is a bad job."""
    if not _TEMPLATE_NAME.match(name):
        raise BadJob(f"invalid template name {name[:80]!r}")
    try:
        return env.get_template(name + TEMPLATE_SUFFIX)
    except TemplateNotFound as exc:
        raise BadJob(f"unknown template {name!r}") from exc
