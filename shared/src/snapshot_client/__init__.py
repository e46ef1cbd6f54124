"""Room Snapshots client: ``Client`` (typed calls to the HTTP API), its models and errors,
and the ``snapshots`` command line (``snapshot_client.cli``)."""

from snapshot_client.client import Client
from snapshot_client.errors import (
    ApiProblem,
    ApiUnreachable,
    EventStreamUnusable,
    RenderFailed,
    RequestRefused,
    ServerError,
    SnapshotsError,
    WaitTimeout,
)
from snapshot_client.models import (
    Download,
    Followed,
    Member,
    Message,
    Room,
    Snapshot,
    SnapshotAccepted,
    Task,
)

__all__ = [
    "ApiProblem",
    "ApiUnreachable",
    "Client",
    "Download",
    "EventStreamUnusable",
    "Followed",
    "Member",
    "Message",
    "RenderFailed",
    "RequestRefused",
    "Room",
    "ServerError",
    "Snapshot",
    "SnapshotAccepted",
    "SnapshotsError",
    "Task",
    "WaitTimeout",
]
