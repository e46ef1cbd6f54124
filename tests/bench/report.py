"""One table of figures, each beside its same-run baseline, and ``bench/results.json``."""

from __future__ import annotations

import datetime as dt
import json
import math
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "bench" / "results.json"
QUICK_RESULTS = REPO / "bench" / "results-quick.json"  # so a quick run never hides a full one


@dataclass
class Row:
    """One line of the table. ``ratio`` is measured ÷ baseline unless the figure says otherwise."""

    id: str
    figure: str
    measured: str
    baseline: str = ""
    ratio: float | None = None
    target: str = ""
    met: bool | None = None
    data: dict[str, Any] = field(default_factory=dict)


def ms(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isinf(value)):
        return "n/a"
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    return f"{value:.1f} ms" if value >= 10 else f"{value:.2f} ms"


def p99_text(run: dict[str, Any]) -> str:
    return ">run (unanswered)" if run.get("p99_unbounded") else ms(run.get("p99_ms"))


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0 or math.isinf(a) or math.isinf(b):
        return None
    return a / b


def _cell(row: Row, name: str) -> str:
    if name == "ratio":
        return "" if row.ratio is None else f"{row.ratio:.2f}"
    if name == "met":
        return {True: "yes", False: "NO", None: ""}[row.met]
    return str(getattr(row, name))


COLUMNS = (
    ("id", "#"),
    ("figure", "figure"),
    ("measured", "measured"),
    ("baseline", "baseline (same run)"),
    ("ratio", "ratio"),
    ("target", "target"),
    ("met", "met"),
)


def table(rows: list[Row]) -> str:
    cells = [[_cell(r, name) for name, _ in COLUMNS] for r in rows]
    heads = [title for _, title in COLUMNS]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(heads)]

    def line(values: list[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    out = [line(heads), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(c) for c in cells]
    return "\n".join(out)


def git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def write_results(
    rows: list[Row],
    machine: dict[str, Any],
    settings: dict[str, Any],
    duration_s: float,
    quick: bool = False,
    only: str = "",
) -> Path:
    document = {
        "commit": git("rev-parse", "HEAD") or None,
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine,
        "settings": settings,
        "duration_s": round(duration_s, 1),
        "table": table(rows),
        "rows": [asdict(r) for r in rows],
    }
    path = QUICK_RESULTS if quick else RESULTS
    if only:  # one row alone never overwrites a whole run's figures
        path = path.with_name(f"{path.stem}-{only}{path.suffix}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return path
