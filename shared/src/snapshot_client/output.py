"""How the CLI reports: exit codes, JSON or human output, errors, progress bars."""

from __future__ import annotations

import enum
import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from snapshot_client.config import ConfigError
from snapshot_client.errors import (
    ApiProblem,
    ApiUnreachable,
    RenderFailed,
    RequestRefused,
    SnapshotsError,
    WaitTimeout,
)

P = ParamSpec("P")
R = TypeVar("R")
err = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)


class Exit(enum.IntEnum):
    """Exit codes (stable: scripts rely on them; the README lists them)."""

    OK = 0
    ERROR = 1  # anything unexpected (a bug): the traceback is printed
    USAGE = 2  # bad flags or arguments, bad config, unreadable input file
    FAILED = 3  # the render ended `failed` (create --wait, status)
    REFUSED = 4  # the API refused the request: 4xx (bad input, token, role, not found, not ready)
    UNREACHABLE = 5  # no answer from the API, or a 5xx answer
    TIMEOUT = 6  # --wait gave up (--timeout) before the task finished


class UsageError(Exception):
    """The command line or its input file cannot be used as given."""


def emit(data: Any) -> None:
    """One JSON document on stdout (``--json``)."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def _classify(exc: Exception) -> tuple[Exit, str, dict[str, Any]]:
    if isinstance(exc, UsageError | ConfigError):
        return Exit.USAGE, str(exc), {"kind": "usage"}
    if isinstance(exc, RenderFailed):
        info = {"kind": "failed", "task_id": exc.task_id, "code": exc.code, "detail": exc.message}
        return Exit.FAILED, str(exc), info
    if isinstance(exc, WaitTimeout):
        return Exit.TIMEOUT, str(exc), {"kind": "timeout"}
    if isinstance(exc, ApiUnreachable):
        return Exit.UNREACHABLE, f"API unreachable: {exc}", {"kind": "unreachable"}
    if isinstance(exc, ApiProblem):
        kind = "refused" if isinstance(exc, RequestRefused) else "server_error"
        code = Exit.REFUSED if isinstance(exc, RequestRefused) else Exit.UNREACHABLE
        text = f"{exc.status} {exc.code}: {exc.detail}"
        if exc.request_id:
            text += f" (request {exc.request_id})"
        return code, text, {"kind": kind, **exc.to_dict()}
    return Exit.ERROR, str(exc), {"kind": "error"}


def fail(exc: Exception, as_json: bool, extra: dict[str, Any] | None = None) -> typer.Exit:
    """Report ``exc`` (stderr; and on stdout as ``{"error": …}`` under ``--json``)."""
    code, text, info = _classify(exc)
    err.print(f"error: {text}", markup=False)
    if as_json:
        emit({"error": {**info, "message": text, **(extra or {})}})
    return typer.Exit(int(code))


def handled(command: Callable[P, R]) -> Callable[P, R]:
    """Turn the client's errors into a message and the documented exit code."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except (SnapshotsError, ConfigError, UsageError) as exc:
            raise fail(exc, bool(kwargs.get("as_json"))) from None

    return run


@contextmanager
def progress_bar(description: str, total: int | None, count: bool = False) -> Iterator[Progress]:
    """A bar on stderr (drawn live on a terminal; elsewhere its last state is printed once)."""
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn() if count else TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=err, transient=False) as bar:
        bar.add_task(description, total=total)
        yield bar
