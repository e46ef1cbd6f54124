"""The renderer's error tree: each error knows its stable ``code`` and whether a retry can help.

The consumer translates these in one place: ``retryable`` errors are retried after a growing
delay (at most ``delivery_limit`` attempts), the others end the task as ``failed``.
Instances cross the worker-process boundary, so they carry nothing but a message string.
"""

from __future__ import annotations

import datetime as dt


class RendererError(Exception):
    """Base of every error the renderer reports."""

    code = "renderer_error"
    retryable = False

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.__class__.__doc__ or self.code)

    @property
    def message(self) -> str:
        """The human-readable message, without the class name."""
        return str(self.args[0]) if self.args else self.code


class BadJob(RendererError):
    """The job is undecodable, invalid, or its content hash does not match its content."""

    code = "bad_job"


class RenderFailed(RendererError):
    """The template or the PDF engine failed on this content."""

    code = "render_error"


class RenderTimeout(RendererError):
    """The render exceeded its wall-clock budget."""

    code = "render_timeout"


class DeadlineExceeded(RendererError):
    """The job's deadline passed before it could be rendered."""

    code = "deadline_exceeded"


def check_deadline(deadline: dt.datetime | None) -> None:
    """Raise ``DeadlineExceeded`` if ``deadline`` (naive means UTC) lies in the past."""
    if deadline is None:
        return
    if deadline.tzinfo is None:
        deadline = deadline.replace(tzinfo=dt.UTC)
    if deadline < dt.datetime.now(dt.UTC):
        raise DeadlineExceeded(f"the job's deadline {deadline} has passed")


class WorkerCrashed(RendererError):
    """A worker process died during the render; another attempt may succeed."""

    code = "worker_crashed"
    retryable = True


class StoreError(RendererError):
    """The PDF could not be written to or read from the disk store."""

    code = "store_error"
    retryable = True


class RenderOutOfMemory(RendererError):
    """The render's worker process went over its memory budget and was stopped."""

    code = "render_oom"


class TooManyPages(RendererError):
    """The PDF would exceed the page limit per snapshot."""

    code = "too_many_pages"


def from_code(code: str, message: str) -> RendererError:
    """Rebuild an error sent across the worker-process boundary as (code, message)."""
    for cls in _all(RendererError):
        if cls.code == code:
            return cls(message)
    return RenderFailed(message)


def _all(cls: type[RendererError]) -> list[type[RendererError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found += _all(sub)
    return found


class AttemptsExhausted(RendererError):
    """Every attempt the delivery limit allows failed with a retryable error."""

    code = "delivery_limit_exceeded"  # the same code as a job the broker dead-lettered


def gave_up(error: BaseException | None, attempt: int) -> RendererError:
    """The terminal error of a job whose every attempt failed, naming the last error."""
    if isinstance(error, RendererError):
        detail = f"{error.message} ({error.code})"
    else:
        detail = "an unexpected error (internal_error)"
    return AttemptsExhausted(f"The render job failed {attempt} attempts; the last: {detail}")


class PiecesIncomplete(RendererError):
    """A document's pieces did not all come back (a replica went away, a reply was lost, a
    piece left the caches before assembly); another attempt renders only what is missing."""

    code = "pieces_incomplete"
    retryable = True
