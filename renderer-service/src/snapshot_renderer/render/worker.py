"""Code that runs inside a render worker process, never on the event loop.

Each process builds its Jinja2 environment, URL fetcher, WeasyPrint ``FontConfiguration`` and
parsed stylesheets once (``init_worker``) and reuses them for every job until it is recycled.
Output is deterministic: no wall clock (the PDF dates are the payload's as-of time) and a PDF
identifier derived from the content, so the same input gives the same bytes in any process.
The identifier is the content hash itself (``snapshot_shared.pdf_identity``): the API reads it
back to check that a stored PDF is the one of the snapshot it serves.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from jinja2 import Environment
from pydantic import ValidationError
from snapshot_shared.hashing import payload_content_hash
from snapshot_shared.logging import setup_logging
from snapshot_shared.messages import RenderOptions, SnapshotPayload
from snapshot_shared.pdf_identity import identifier
from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration

from snapshot_renderer.errors import BadJob, RendererError, RenderFailed, TooManyPages
from snapshot_renderer.render.faults import FaultHooks, inject
from snapshot_renderer.render.fetcher import AssetsOnlyFetcher
from snapshot_renderer.render.resources import assets_dir, templates_dir
from snapshot_renderer.render.templates import build_environment, get_template
from snapshot_renderer.render.view import build_context

STYLESHEET = "snapshot.css"
PAGE_SIZES = ("A4", "Letter")
log = logging.getLogger(__name__)


@dataclass
class WorkerState:
    """What one worker process builds once and reuses."""

    env: Environment
    fetcher: AssetsOnlyFetcher
    font_config: FontConfiguration
    stylesheets: dict[str, list[CSS]]
    base_url: str


@dataclass(frozen=True)
class RenderResult:
    """What a worker sends back: the PDF and a few numbers for metrics."""

    pdf: bytes
    pages: int
    seconds: float
    pid: int
    refused_fetches: int


_state: WorkerState | None = None
_max_pages = 2000
_faults = FaultHooks()  # tests only: crash, hold or bloat on marked rooms


# fontTools stamps the fonts it subsets into the PDF with the current time unless this is set
# (reproducible-builds.org's SOURCE_DATE_EPOCH); the color emoji font's subset carried the
# render time, so two renders of one snapshot differed. Fixed, not defaulted: every replica
# must write the same bytes for the same content.
FONT_TIMESTAMP_EPOCH = "0"


def build_state(templates: Path, assets: Path) -> WorkerState:
    """Jinja2 environment, fetcher, font configuration and parsed CSS for one process."""
    os.environ["SOURCE_DATE_EPOCH"] = FONT_TIMESTAMP_EPOCH
    fetcher = AssetsOnlyFetcher(assets)
    font_config = FontConfiguration()
    main_css = CSS(filename=str(assets / STYLESHEET), url_fetcher=fetcher, font_config=font_config)
    sheets = {
        size: [main_css, CSS(string=f"@page {{ size: {size}; }}", font_config=font_config)]
        for size in PAGE_SIZES
    }
    return WorkerState(
        env=build_environment(templates),
        fetcher=fetcher,
        font_config=font_config,
        stylesheets=sheets,
        base_url=assets.as_uri() + "/",
    )


_WARM_UP_PAYLOAD: dict[str, Any] = {
    "room": {
        "id": "00000000-0000-0000-0000-000000000000",
        "name": "Warm-up",
        "created_at": "2000-01-01T00:00:00.000000Z",
    },
    "sections": ["members", "messages"],
    "members": [
        {
            "user_id": "u",
            "display_name": "Warm-up",
            "role": "owner",
            "joined_at": "2000-01-01T00:00:00.000000Z",
        }
    ],
    "messages": [
        {
            "id": "00000000-0000-0000-0000-000000000000",
            "author_id": "u",
            "author_name": "Warm-up",
            "created_at": "2000-01-01T00:00:00.000000Z",
            "body": "Warm-up",
            "kind": "note",
        }
    ],
    "as_of": "2000-01-01T00:00:00.000000Z",
}


def init_worker(
    log_level: str = "WARNING", log_format: str = "console", warm_up: bool = True
) -> None:
    """Process-pool initializer: logging, per-process state, and one throw-away render.

    The warm-up render loads fonts and fills WeasyPrint's caches, so a fresh (or recycled)
    worker's first real job is not the slow one.
    """
    global _state
    setup_logging(log_level, log_format)
    _state = build_state(templates_dir(), assets_dir())
    if warm_up:
        try:
            render_pdf(_WARM_UP_PAYLOAD, {}, "snapshot")
        except RendererError:
            log.exception("warm-up render failed")


def _get_state() -> WorkerState:
    global _state
    if _state is None:
        _state = build_state(templates_dir(), assets_dir())
    return _state


def _validate(payload: dict[str, Any], options: dict[str, Any]) -> tuple[Any, RenderOptions]:
    try:
        return SnapshotPayload.model_validate(payload), RenderOptions.model_validate(options)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:5]
        )
        raise BadJob(f"invalid payload or options: {problems}") from None


def render_pdf(
    payload: dict[str, Any], options: dict[str, Any], template: str, hash_version: int = 1
) -> tuple[bytes, int]:
    """Render one snapshot to PDF; return the PDF bytes and the page count. Its identifier
    is the content hash by formula ``hash_version`` (the job's)."""
    state = _get_state()
    snapshot, render_options = _validate(payload, options)
    html_text = get_template(state.env, template).render(build_context(snapshot, render_options))
    # The content hash of what is really rendered, not the job's claim: the API checks it.
    pdf_id = identifier(payload_content_hash(payload, options, template, hash_version))
    try:
        document = HTML(
            string=html_text, base_url=state.base_url, url_fetcher=state.fetcher
        ).render(
            font_config=state.font_config,
            stylesheets=state.stylesheets[render_options.page_size],
        )
        if len(document.pages) > _max_pages:
            raise TooManyPages(
                f"the snapshot would have {len(document.pages)} pages; the limit is {_max_pages}"
            )
        pdf = document.write_pdf(pdf_identifier=pdf_id)
    except RendererError:
        raise
    except Exception as exc:  # anything WeasyPrint raises ends as render_error
        log.exception("render failed")
        raise RenderFailed(f"{type(exc).__name__}: {exc}"[:500]) from None
    return pdf, len(document.pages)


def render_job(
    payload: dict[str, Any], options: dict[str, Any], template: str, hash_version: int = 1
) -> RenderResult:
    """Pool entry point: ``render_pdf`` plus timing, pid and refused-fetch count."""
    state = _get_state()
    inject(_faults, payload)
    refused_before = state.fetcher.refused
    started = time.perf_counter()
    pdf, pages = render_pdf(payload, options, template, hash_version)
    return RenderResult(
        pdf=pdf,
        pages=pages,
        seconds=time.perf_counter() - started,
        pid=os.getpid(),
        refused_fetches=state.fetcher.refused - refused_before,
    )


def ping() -> int:
    """Health round-trip: proves a worker is up and initialized; returns its pid."""
    _get_state()
    return os.getpid()


def serve(
    conn: Connection,
    log_level: str,
    log_format: str,
    max_pages: int,
    warm_up: bool = True,
    faults: FaultHooks | None = None,
) -> None:
    """A worker process's main loop: answer ``("render", ...)`` and ``("ping",)`` requests on
    ``conn`` until the parent sends ``None`` or goes away.

    Signals from the terminal or the process group are ignored: the parent decides when its
    workers stop, after in-flight renders are finished or handed back.
    """
    global _max_pages, _faults
    _faults = faults or FaultHooks()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _max_pages = max_pages
    init_worker(log_level, log_format, warm_up)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        conn.send(_answer(request))


def _answer(request: tuple[Any, ...]) -> tuple[Any, ...]:
    kind, *args = request
    try:
        if kind == "render":
            return ("ok", render_job(*args))
        if kind in ("piece", "stamp", "assemble"):
            # imported here: piece_jobs imports this module (its state and hooks)
            from snapshot_renderer.render import piece_jobs

            calls: dict[str, Callable[..., Any]] = {
                "piece": piece_jobs.piece_job,
                "stamp": piece_jobs.stamp_job,
                "assemble": piece_jobs.assembly_job,
            }
            call = calls[kind]
            return ("ok", call(*args))
        return ("ok", ping())
    except RendererError as exc:
        return ("error", exc.code, exc.message)
    except Exception as exc:  # noqa: BLE001 - reported to the parent as a render error
        return ("error", RenderFailed.code, f"{type(exc).__name__}: {exc}"[:500])
