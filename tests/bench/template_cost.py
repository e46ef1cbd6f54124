"""What the snapshot template costs over a bare WeasyPrint rendering of the same data.

The bare baseline is the same messages (author, time, body) as one escaped ``<p>`` each, with
only the page-size sheet: what WeasyPrint itself needs to lay the text out and write the PDF.
Both run in the same process, set up like a render worker (``worker.init_worker``), warm, one
after the other, ``repeats`` times: medians of wall-clock and of CPU time (this process's
``process_time``: on a machine shared with other work, CPU time moves less than wall time).

Standalone, from ``tests/``: ``python -m bench.template_cost [messages] [repeats] [ref]``
(defaults 1,000 and 3) prints the table; with a git ``ref``, the templates and CSS of that
commit are measured too, in the same rounds (before/after in one run). ``make bench`` shows
the same figures per big room (item 5), and ``BENCH_ONLY=template make bench`` runs only this
row, in a bench render worker.
"""

from __future__ import annotations

import datetime as dt
import html
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from snapshot_renderer.render import worker
from snapshot_shared.messages import RenderOptions, SnapshotPayload
from weasyprint import HTML

from bench.report import Row, ms, table
from bench.rooms import KINDS, text_bodies

_START = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)


def sample_payload(count: int) -> dict[str, Any]:
    """A room like the bench's own: ``text_bodies``, the bench's kinds, one message every
    17 minutes (so ~85 messages a day), three members."""
    stamp = _START.isoformat().replace("+00:00", "Z")
    messages = [
        {
            "id": str(uuid.UUID(int=i + 1)),
            "author_id": ("olivia", "eddie", "vera")[i % 3],
            "author_name": ("Olivia Owner", "Eddie Example", "Vera Example")[i % 3],
            "created_at": (_START + dt.timedelta(minutes=17 * i)).isoformat(),
            "body": body,
            "kind": KINDS[i % len(KINDS)],
        }
        for i, body in enumerate(text_bodies(count))
    ]
    members = [
        {"user_id": u, "display_name": n, "role": r, "joined_at": stamp}
        for u, n, r in (
            ("olivia", "Olivia Owner", "owner"),
            ("eddie", "Eddie Example", "editor"),
            ("vera", "Vera Example", "viewer"),
        )
    ]
    room = {"id": str(uuid.UUID(int=0)), "name": "Template cost", "created_at": stamp}
    last = messages[-1]["created_at"] if messages else stamp
    return {
        "room": room,
        "sections": ["members", "messages"],
        "members": members,
        "messages": messages,
        "as_of": last,
    }


def bare_html(payload: dict[str, Any]) -> str:
    """The payload's messages as plain paragraphs: no classes, no styles, no structure."""
    snapshot = SnapshotPayload.model_validate(payload)
    rows = [
        f"<p>{html.escape(m.author_name or m.author_id)} {m.created_at:%H:%M}<br>"
        f"{html.escape(m.body)}</p>"
        for m in snapshot.messages
    ]
    return "<!DOCTYPE html><html><body>" + "".join(rows) + "</body></html>"


def _timed(render: Any) -> dict[str, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    pages = render()
    return {
        "seconds": time.perf_counter() - wall,
        "cpu_seconds": time.process_time() - cpu,
        "pages": pages,
    }


def bare_render(payload: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """One bare WeasyPrint render in this process (a render worker's fonts and page size)."""
    state = worker._get_state()
    page = RenderOptions.model_validate(options).page_size

    def render() -> int:
        document = HTML(
            string=bare_html(payload), base_url=state.base_url, url_fetcher=state.fetcher
        ).render(font_config=state.font_config, stylesheets=state.stylesheets[page][1:])
        document.write_pdf()
        return len(document.pages)

    return _timed(render)


def template_render(
    payload: dict[str, Any], options: dict[str, Any], template: str = "snapshot"
) -> dict[str, Any]:
    """One render through the renderer's own code (``worker.render_pdf``)."""
    return _timed(lambda: worker.render_pdf(payload, options, template)[1])


def compare(
    payload: dict[str, Any],
    options: dict[str, Any],
    repeats: int,
    template: str = "snapshot",
    before: worker.WorkerState | None = None,
) -> dict[str, Any]:
    """Template and bare alternately, ``repeats`` times each; medians per message. With
    ``before`` (another template and CSS: ``bench.template_look.state_at``), that one too, in
    the same rounds: a before/after comparison that this machine's load cannot tilt."""
    count = max(1, len(payload["messages"]))
    runs: dict[str, list[dict[str, Any]]] = {"template": [], "bare": []}
    for round_ in range(-1 if before is not None else 0, repeats):
        if before is not None:  # round -1 warms its own fonts and templates up, unmeasured
            after, worker._state = worker._get_state(), before
            try:
                measured = template_render(payload, options, template)
            finally:
                worker._state = after
            if round_ < 0:
                continue
            runs.setdefault("before", []).append(measured)
        runs["template"].append(template_render(payload, options, template))
        runs["bare"].append(bare_render(payload, options))
    out: dict[str, Any] = {"messages": len(payload["messages"]), "repeats": repeats}
    for name, results in runs.items():
        median = statistics.median(r["seconds"] for r in results)
        cpu = statistics.median(r["cpu_seconds"] for r in results)
        out[name] = {
            "median_s": median,
            "ms_per_message": median * 1000 / count,
            "cpu_median_s": cpu,
            "cpu_ms_per_message": cpu * 1000 / count,
            "pages": results[0]["pages"],
            "seconds": [round(r["seconds"], 3) for r in results],
        }
    out["ratio"] = out["template"]["median_s"] / out["bare"]["median_s"]
    out["cpu_ratio"] = out["template"]["cpu_median_s"] / out["bare"]["cpu_median_s"]
    return out


def rows(result: dict[str, Any], row_id: str = "template", ref: str = "") -> list[Row]:
    """The template's per-message cost beside bare WeasyPrint's: wall-clock, then CPU time
    (and the same for the template at ``ref`` when ``compare`` measured it)."""
    bare, size = result["bare"], f"{result['messages']:,}-message room"
    out = []
    for name, label in (("before", f"template at {ref}"), ("template", "template")):
        if name not in result:
            continue
        it = result[name]
        pages = f"{it['pages']} pages, bare {bare['pages']}; median of {result['repeats']}"
        for unit, key, total in (("wall", "", "median_s"), ("CPU", "cpu_", "cpu_median_s")):
            out.append(
                Row(
                    row_id,
                    f"{size}: {label} cost per message, {unit}"
                    + (f" ({pages})" if unit == "wall" else ""),
                    ms(it[f"{key}ms_per_message"]),
                    f"bare WeasyPrint {ms(bare[f'{key}ms_per_message'])}",
                    it[total] / bare[total],
                    data=result if (name, unit) == ("template", "wall") else {},
                )
            )
    return out


def main(argv: list[str]) -> int:
    """``[messages] [repeats] [ref]``: with a git ``ref``, its template and CSS as well."""
    count = int(argv[0]) if argv else 1000
    repeats = int(argv[1]) if len(argv) > 1 else 3
    ref = argv[2] if len(argv) > 2 else ""
    worker.init_worker("WARNING", "console")
    with tempfile.TemporaryDirectory() as tmp:
        before = None
        if ref:
            from bench.template_look import state_at  # git archive: only when asked

            before = state_at(ref, Path(tmp))
        result = compare(sample_payload(count), {}, repeats, before=before)
    print(table(rows(result, ref=ref)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
