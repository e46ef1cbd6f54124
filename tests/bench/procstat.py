"""CPU time and resident memory of process trees, and the machine, read from ``/proc``."""

from __future__ import annotations

import os
import platform
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
MIB = 2**20


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return raw[raw.rindex(")") + 2 :].split()  # fields from "state" on (the name may hold spaces)


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))):
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def backend_pids() -> dict[str, int]:
    """The PostgreSQL postmaster and the RabbitMQ node: their trees' CPU counts every client's
    work, the bench's and anyone else's on the machine."""
    found: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        comm = _comm(pid)
        fields = _stat_fields(pid) if comm in ("postgres", "beam.smp") else None
        if not fields:
            continue
        if comm == "postgres" and _comm(int(fields[1])) != "postgres":
            found["postgres"] = pid
        elif comm == "beam.smp":
            found["rabbitmq"] = pid
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of ``pids`` (processes that already exited count 0)."""
    total = 0
    for pid in pids:
        if fields := _stat_fields(pid):
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def _status_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def rss_bytes(pid: int) -> int:
    return _status_kib(pid, "VmRSS") * 1024


def peak_rss_bytes(pid: int) -> int:
    """The kernel's high-water mark of the resident set (``VmHWM``)."""
    return _status_kib(pid, "VmHWM") * 1024


def system_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    total = sum(fields[:8])
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


class CpuMeter:
    """CPU used by named process trees and by the whole machine between ``start`` and ``stop``."""

    def __init__(self, roots: dict[str, int]) -> None:
        self.roots = roots
        self._trees: dict[str, list[int]] = {}
        self._cpu0: dict[str, float] = {}
        self._sys0 = (0.0, 0.0)
        self._t0 = 0.0

    def start(self) -> None:
        self._trees = {name: descendants(pid) for name, pid in self.roots.items()}
        self._cpu0 = {name: cpu_seconds(pids) for name, pids in self._trees.items()}
        self._sys0 = system_busy()
        self._t0 = time.perf_counter()

    def stop(self) -> dict[str, object]:
        wall = time.perf_counter() - self._t0
        busy, total = system_busy()
        cores = {}
        for name, pids in self._trees.items():
            born = [p for p in descendants(self.roots[name]) if p not in set(pids)]
            used = cpu_seconds(pids) - self._cpu0[name] + cpu_seconds(born)
            cores[name] = round(used / wall, 2) if wall else 0.0
        spent = total - self._sys0[1]
        return {
            "cpu_cores": cores,
            "machine_busy_pct": round(100 * (busy - self._sys0[0]) / spent, 1) if spent else 0.0,
        }


@dataclass
class RssSampler:
    """Samples the resident memory of a process tree in a thread; keeps the peaks."""

    root_pid: int
    interval: float = 0.05
    peak_total: int = 0
    peak_by_pid: dict[int, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> RssSampler:
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()

    def _sample(self) -> None:
        total = 0
        for pid in descendants(self.root_pid):
            rss = rss_bytes(pid)
            total += rss
            self.peak_by_pid[pid] = max(self.peak_by_pid.get(pid, 0), rss, peak_rss_bytes(pid))
        self.peak_total = max(self.peak_total, total)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    @property
    def peak_process(self) -> int:
        return max(self.peak_by_pid.values(), default=0)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (FileNotFoundError, ProcessLookupError):
        return ""


@dataclass
class WorkerRss(RssSampler):
    """``RssSampler`` over a renderer process, which also tells its render workers (the
    spawned ``multiprocessing`` children: not the renderer's own process, not its resource
    tracker) apart. ``worker_peak``: the highest resident set of any worker, each read as the
    larger of the sampled ``VmRSS`` and the kernel's ``VmHWM``, every 50 ms and once more at
    the end. ``phase_peaks``: the highest sampled ``VmRSS`` of a worker while the job reported
    each phase (``rendering`` pieces, ``assembling``), set from the job's progress events.
    ``cpu_seconds``: CPU time the renderer's own process and its workers used while sampled
    (a worker that exits counts up to its last sample)."""

    phase: str = "queued"
    phase_peaks: dict[str, int] = field(default_factory=dict)
    workers: set[int] = field(default_factory=set)
    others: set[int] = field(default_factory=set)
    cpu_first: dict[int, float] = field(default_factory=dict)
    cpu_last: dict[int, float] = field(default_factory=dict)

    def _is_worker(self, pid: int) -> bool:
        if pid not in self.workers and pid not in self.others:
            spawned = pid != self.root_pid and "spawn_main" in _cmdline(pid)
            (self.workers if spawned else self.others).add(pid)
        return pid in self.workers

    def _sample(self) -> None:
        total = 0
        phase = self.phase
        for pid in descendants(self.root_pid):
            rss = rss_bytes(pid)
            total += rss
            self.peak_by_pid[pid] = max(self.peak_by_pid.get(pid, 0), rss, peak_rss_bytes(pid))
            if self._is_worker(pid):
                self.phase_peaks[phase] = max(self.phase_peaks.get(phase, 0), rss)
            if (cpu := cpu_seconds([pid])) or pid not in self.cpu_last:
                self.cpu_first.setdefault(pid, cpu)
                self.cpu_last[pid] = cpu
        self.peak_total = max(self.peak_total, total)

    def cpu_seconds(self) -> dict[str, float]:
        used = {pid: self.cpu_last[pid] - self.cpu_first[pid] for pid in self.cpu_last}
        return {
            "renderer": round(used.get(self.root_pid, 0.0), 2),
            "workers": round(sum(used[p] for p in self.workers if p in used), 2),
        }

    @property
    def worker_peak(self) -> int:
        return max((self.peak_by_pid[p] for p in self.workers), default=0)

    @property
    def main_peak(self) -> int:
        return self.peak_by_pid.get(self.root_pid, 0)


def machine() -> dict[str, object]:
    """Cores, memory, CPU model and OS of this machine."""
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 2**20, 1),
        "cpu_model": model,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load_avg_at_start": [round(v, 2) for v in os.getloadavg()],
    }
