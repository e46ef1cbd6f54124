"""Item 6: downloads, ``GET …/download`` of a ~1 MB PDF with 16 clients, beside the very same
file served by a static Starlette app under the same server (see ``static_app``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from snapshot_shared.store import pdf_path

from bench.load import LoadGenerator
from bench.report import Row, p99_text, ratio
from bench.stack import BenchStack


def run(
    stack: BenchStack,
    lg: LoadGenerator,
    auth: dict[str, str],
    snapshot_id: str,
    key: str,
    clients: int,
    seconds: float,
) -> list[Row]:
    path = pdf_path(stack.store, key)
    size = path.stat().st_size
    static_base = stack.start_static(stack.store)
    static_port = int(static_base.rsplit(":", 1)[1])
    api_request = {"path": f"/api/v1/snapshots/{snapshot_id}/download", "headers": auth}
    static_request = {"path": "/static/" + path.relative_to(stack.store).as_posix()}

    def go(port: int, request: dict[str, Any], server: int) -> dict[str, Any]:
        spec = {"mode": "closed", "port": port, "requests": [request], "concurrency": clients}
        lg.run({**spec, "count": clients * 2})  # warm-up
        return lg.run({**spec, "duration": seconds}, {"server": server})

    api = go(stack.port, api_request, stack.api_pid)
    assert stack.static is not None
    static = go(static_port, static_request, stack.static.pid)
    return [
        Row(
            "6",
            f"download {size / 2**20:.2f} MiB PDF, {clients} clients (req/s, p99)",
            f"{api['throughput_rps']:.0f}/s, p99 {p99_text(api)}",
            f"static file, same server: {static['throughput_rps']:.0f}/s, p99 {p99_text(static)}",
            ratio(api["throughput_rps"], static["throughput_rps"]),
            "",
            None,
            {
                "api": api,
                "static": static,
                "bytes": size,
                "p99_ratio": ratio(api["p99_ms"], static["p99_ms"]),
                "file": str(Path(path).name),
            },
        )
    ]
