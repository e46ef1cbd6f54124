"""What the snapshot template costs over a bare WeasyPrint rendering of the same data.

The bare baseline is the same messages (author, time, body) as one escaped ``<p>`` each, with
only the page-size sheet: what WeasyPrint itself needs to lay the text out and write the PDF.
Both run in the same process, set up like a render worker (``worker.init_worker``), warm, one
after the other, ``repeats`` times: medians of wall-clock and of CPU time (this process's
``process_time``: on a machine shared with other work, CPU time moves less than wall time).

Standalone, from ``tests/``: ``python -m bench.template_cost [messages] [repeats]`` (defaults
1,000 and 3) prints the table. ``make bench`` shows the same figures per big room (item 5), and
``BENCH_ONLY=template make bench`` runs only this row, in a bench render worker.
"""

from __future__ import annotations

import datetime as dt
import html
import statistics
import sys
import time
import uuid
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
    payload: dict[str, Any], options: dict[str, Any], repeats: int, template: str = "snapshot"
) -> dict[str, Any]:
    """Template and bare alternately, ``repeats`` times each; medians per message."""
    count = max(1, len(payload["messages"]))
    runs: dict[str, list[dict[str, Any]]] = {"template": [], "bare": []}
    for _ in range(repeats):
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


def rows(result: dict[str, Any], row_id: str = "template") -> list[Row]:
    """The template's per-message cost beside bare WeasyPrint's: wall-clock, then CPU time."""
    template, bare = result["template"], result["bare"]
    size = f"{result['messages']:,}-message room"
    pages = f"{template['pages']} pages, bare {bare['pages']}; median of {result['repeats']}"
    return [
        Row(
            row_id,
            f"{size}: template cost per message, wall ({pages})",
            ms(template["ms_per_message"]),
            f"bare WeasyPrint {ms(bare['ms_per_message'])}",
            result["ratio"],
            data=result,
        ),
        Row(
            row_id,
            f"{size}: template cost per message, CPU",
            ms(template["cpu_ms_per_message"]),
            f"bare WeasyPrint {ms(bare['cpu_ms_per_message'])}",
            result["cpu_ratio"],
        ),
    ]


def main(argv: list[str]) -> int:
    count = int(argv[0]) if argv else 1000
    repeats = int(argv[1]) if len(argv) > 1 else 3
    worker.init_worker("WARNING", "console")
    print(table(rows(compare(sample_payload(count), {}, repeats))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
