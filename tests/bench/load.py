"""The bench's side of the load generator: one ``bench.loadgen`` process, fed a spec per run.

Each run also meters the CPU of the server's process tree and of the whole machine, so the
table can show who was busy: the server, the load generator, or someone else on the machine.
"""

from __future__ import annotations

import json
import math
import subprocess
from typing import Any

from bench.loadgen import latency_stats
from bench.procstat import CpuMeter
from bench.stack import TESTS_DIR, python


class LoadGenerator:
    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [python(), "-m", "bench.loadgen"],
            cwd=TESTS_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.runs: list[dict[str, Any]] = []

    def run(self, spec: dict[str, Any], servers: dict[str, int] | None = None) -> dict[str, Any]:
        """Run one spec to completion; the answer plus the CPU use of the ``servers`` trees."""
        assert self._proc.stdin is not None and self._proc.stdout is not None
        meter = CpuMeter(servers or {})
        meter.start()
        self._proc.stdin.write(json.dumps(spec) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"load generator exited with {self._proc.wait()}")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"load generator: {answer['error']}")
        answer.update(meter.stop())
        self.runs.append(answer)
        return answer

    @property
    def pid(self) -> int:
        return self._proc.pid

    def close(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def __enter__(self) -> LoadGenerator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def merge(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from several runs of the same spec (their raw latencies pooled)."""
    lat = sorted(
        math.inf if v is None else v / 1000 for r in runs for v in r.pop("latencies_ms", [])
    )
    wall = sum(r["wall_s"] for r in runs)
    ok = sum(r["ok"] for r in runs)
    kinds: dict[str, int] = {}
    for r in runs:
        for kind, n in r["error_kinds"].items():
            kinds[kind] = kinds.get(kind, 0) + n
    cores: dict[str, float] = {}
    for r in runs:
        for name, value in r.get("cpu_cores", {}).items():
            cores[name] = cores.get(name, 0.0) + value * r["wall_s"] / wall
    return {
        **{k: runs[0][k] for k in ("mode", "rate", "concurrency")},
        "requests": len(lat),
        "ok": ok,
        "errors": sum(kinds.values()),
        "error_kinds": kinds,
        "wall_s": round(wall, 3),
        "throughput_rps": round(ok / wall, 1) if wall > 0 else None,
        **latency_stats(lat),
        "send_lag_p99_ms": max((r["send_lag_p99_ms"] or 0) for r in runs),
        "loadgen_cpu_pct": round(sum(r["loadgen_cpu_s"] for r in runs) / wall * 100, 1),
        "cpu_cores": {k: round(v, 2) for k, v in cores.items()},
        "machine_busy_pct": round(sum(r["machine_busy_pct"] * r["wall_s"] for r in runs) / wall, 1),
        "parts": [{k: v for k, v in r.items() if k != "statuses"} for r in runs],
    }
