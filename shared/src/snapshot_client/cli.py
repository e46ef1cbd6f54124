"""``snapshots``: the Room Snapshots API from a shell (typer for the commands, rich for bars)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from snapshot_client import jsonl
from snapshot_client.client import BATCH_MAX, Client
from snapshot_client.config import resolve
from snapshot_client.errors import RenderFailed, SnapshotsError
from snapshot_client.models import Followed, Message, Task
from snapshot_client.output import Exit, UsageError, emit, err, fail, handled, progress_bar

HELP = """Room Snapshots from the command line: rooms, messages, PDF snapshots.

The API URL and token come from --api-url/--token, else SNAPSHOTS_API_URL/SNAPSHOTS_TOKEN,
else the config file (--config, SNAPSHOTS_CONFIG or ~/.config/snapshots/config.toml, keys
api_url and token). Exit codes: 0 done, 2 usage error, 3 render failed, 4 request refused
(4xx), 5 API unreachable or 5xx, 6 --wait timed out, 1 unexpected error."""

app = typer.Typer(
    help=HELP,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,  # a rich traceback would print locals, the token among them
    no_args_is_help=True,
    add_completion=False,
)
rooms_app = typer.Typer(help="Create rooms and manage their members.", no_args_is_help=True)
messages_app = typer.Typer(help="Add messages to a room.", no_args_is_help=True)
app.add_typer(rooms_app, name="rooms")
app.add_typer(messages_app, name="messages")
out = Console(highlight=False, markup=False, soft_wrap=True)  # ids and paths never wrap

Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]


@app.callback()
def main_options(
    ctx: typer.Context,
    api_url: Annotated[
        str | None, typer.Option(help="API base URL [env SNAPSHOTS_API_URL; http://127.0.0.1:8000]")
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(help="Bearer token (JWT) [env SNAPSHOTS_TOKEN]", show_default=False),
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="Config file (TOML) [env SNAPSHOTS_CONFIG]", dir_okay=False)
    ] = None,
) -> None:
    ctx.obj = {"api_url": api_url, "token": token, "config": config}


def _client(ctx: typer.Context) -> Client:
    flags = ctx.find_root().obj or {}
    cfg = resolve(os.environ, **flags)
    if not cfg.token:
        raise UsageError(
            "no token: pass --token, set SNAPSHOTS_TOKEN, or put token in the config file"
        )
    return Client(cfg.api_url, cfg.token)


# --- rooms and messages ------------------------------------------------------------------------
@rooms_app.command("create")
@handled
def rooms_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Room name")],
    as_json: Json = False,
) -> None:
    """Create a room (you become its owner); prints its id."""
    with _client(ctx) as client:
        room = client.create_room(name)
    emit(room.raw) if as_json else out.print(room.id)


@rooms_app.command("member")
@handled
def rooms_member(
    ctx: typer.Context,
    room: Annotated[str, typer.Argument(help="Room id")],
    user: Annotated[str, typer.Argument(help="User id (the token's sub)")],
    role: Annotated[str, typer.Option(help="owner, editor or viewer")] = "viewer",
    name: Annotated[str | None, typer.Option(help="Display name")] = None,
    as_json: Json = False,
) -> None:
    """Add a member to a room or change their role (owner only)."""
    with _client(ctx) as client:
        member = client.put_member(room, user, role, name)
    emit(member.raw) if as_json else out.print(f"{member.user_id}: {member.role}")


@messages_app.command("add")
@handled
def messages_add(
    ctx: typer.Context,
    room: Annotated[str, typer.Argument(help="Room id")],
    file: Annotated[
        Path,
        typer.Option(
            "--file",
            "-f",
            help='JSON Lines: {"body": ..., "kind": ...} or a string per line; - for stdin',
            allow_dash=True,
        ),
    ],
    batch_size: Annotated[
        int, typer.Option(min=1, max=BATCH_MAX, help="Messages per request")
    ] = BATCH_MAX,
    as_json: Json = False,
) -> None:
    """Add the messages of a JSON Lines file, in order, in batches (with a progress bar).

    The file is checked whole before anything is sent. If the API refuses a batch, the
    batches before it stay in the room: the error says how many were added."""
    items = _read_messages(file)
    added: list[Message] = []
    with _client(ctx) as client, progress_bar("messages", len(items), count=True) as bar:

        def advance(batch: list[Message]) -> None:
            added.extend(batch)
            bar.advance(bar.task_ids[0], len(batch))

        try:
            client.add_messages(room, items, batch_size=batch_size, on_batch=advance)
        except SnapshotsError as exc:
            if added:
                err.print(f"{len(added)} of {len(items)} messages were added before the error")
            raise fail(exc, as_json, {"added": len(added)}) from None
    if as_json:
        emit({"room_id": room, "added": len(added), "message_ids": [m.id for m in added]})
    else:
        out.print(f"added {len(added)} messages to {room}")


def _read_messages(file: Path) -> list[dict[str, Any]]:
    try:
        if str(file) == "-":
            return jsonl.parse(sys.stdin, "stdin")
        with file.open(encoding="utf-8") as lines:
            return jsonl.parse(lines, str(file))
    except (OSError, UnicodeDecodeError, jsonl.JsonlError) as exc:
        raise UsageError(str(exc)) from None


# --- snapshots ---------------------------------------------------------------------------------
@app.command("create", short_help="Request a snapshot; --wait follows it, -o saves the PDF.")
@handled
def create(
    ctx: typer.Context,
    room: Annotated[str, typer.Argument(help="Room id")],
    from_: Annotated[str | None, typer.Option("--from", help="Start, RFC 3339 with a zone")] = None,
    to: Annotated[str | None, typer.Option(help="End, RFC 3339 with a zone")] = None,
    sections: Annotated[str | None, typer.Option(help="Comma-separated: members,messages")] = None,
    page_size: Annotated[str | None, typer.Option(help="A4 or Letter")] = None,
    timezone: Annotated[str | None, typer.Option(help="IANA zone, e.g. Europe/Berlin")] = None,
    title: Annotated[str | None, typer.Option(help="Title on the cover")] = None,
    locale: Annotated[str | None, typer.Option(help="BCP 47 tag, e.g. de-DE")] = None,
    idempotency_key: Annotated[
        str | None, typer.Option(help="Same key and body: the same snapshot again")
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the task with a live progress bar to its end")
    ] = False,
    output: Annotated[
        str | None,
        typer.Option(
            "--output", "-o", help="Save the PDF: a file, a folder or - for stdout (implies --wait)"
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option(min=0, help="Give up waiting after this many seconds (0: never)")
    ] = 0,
    poll: Annotated[
        bool,
        typer.Option(
            "--poll", help="Follow the task by polling it, not over its event stream (SSE)"
        ),
    ] = False,
    as_json: Json = False,
) -> None:
    """Request a PDF snapshot of a room; with --wait, follow it to the end; with -o, save it.

    --wait follows the task's live event stream (SSE) and falls back to polling the task when
    the stream cannot be used (--json says which: "followed": "events" or "polling").

    Exit 0 once the request is accepted (without --wait) or the PDF is done (and saved), 3 if
    the render failed, 6 if --timeout ran out first."""
    if output == "-" and as_json:
        raise UsageError("--json and -o - both want stdout; choose one")
    scope = {"from": from_, "to": to}
    if sections:
        scope["sections"] = [s.strip() for s in sections.split(",") if s.strip()]  # type: ignore[assignment]
    options = {"page_size": page_size, "timezone": timezone, "title": title, "locale": locale}
    with _client(ctx) as client:
        accepted = client.create_snapshot(
            room,
            scope={k: v for k, v in scope.items() if v},
            options={k: v for k, v in options.items() if v},
            idempotency_key=idempotency_key,
        )
        if not (wait or output):
            emit(accepted.raw) if as_json else out.print(
                f"snapshot {accepted.snapshot_id} task {accepted.task_id} {accepted.status}"
            )
            return
        started = time.monotonic()
        followed = _follow(client, accepted.task_id, timeout, use_events=not poll)
        task = followed.task
        result: dict[str, Any] = {
            **accepted.raw,
            "task": task.raw,
            "followed": followed.via,
            "fallback": followed.fallback,
            "download": None,
        }
        if task.status == "failed":
            raise _render_failed(task)
        if output == "-":
            client.download(accepted.snapshot_id, sys.stdout.buffer)
            return
        if output is not None:
            result["download"] = client.download(accepted.snapshot_id, output).to_dict()
    if as_json:
        emit(result)
        return
    took = time.monotonic() - started
    saved = result["download"]
    where = f" → {saved['path']} ({saved['bytes']} bytes)" if saved else ""
    out.print(
        f"snapshot {accepted.snapshot_id} completed in {took:.1f} s (cache: {task.cache}){where}"
    )


def _follow(client: Client, task_id: str, timeout: float, use_events: bool) -> Followed:
    with progress_bar("queued", 100) as bar:

        def show(task: Task) -> None:
            phase = task.phase if task.phase not in ("", task.status) else ""
            label = f"{task.status}: {phase}" if phase else task.status
            label = f"{label} ({task.pieces})" if task.pieces else label
            bar.update(bar.task_ids[0], completed=task.progress, description=label)

        return client.follow(
            task_id, on_update=show, timeout=timeout or None, use_events=use_events
        )


def _render_failed(task: Task) -> RenderFailed:
    error = task.error
    return RenderFailed(
        task.task_id, error.code if error else "failed", error.message if error else None
    )


@app.command("status", short_help="Show a task's status and progress.")
@handled
def status(
    ctx: typer.Context, task: Annotated[str, typer.Argument(help="Task id")], as_json: Json = False
) -> None:
    """Show a task: status, progress, phase, cache (exit 3 if it failed)."""
    with _client(ctx) as client:
        found = client.task(task)
    if as_json:
        emit(found.raw)
    else:
        cache = f" (cache: {found.cache})" if found.cache else ""
        pieces = f" ({found.pieces})" if found.pieces else ""
        out.print(f"{found.status} {found.progress}% {found.phase}{pieces}{cache}".rstrip())
        if found.error:
            out.print(f"error: {found.error.code}: {found.error.message or ''}", markup=False)
    if found.status == "failed":
        raise typer.Exit(int(Exit.FAILED))


@app.command("download", short_help="Download a snapshot's PDF.")
@handled
def download(
    ctx: typer.Context,
    snapshot: Annotated[str, typer.Argument(help="Snapshot id")],
    output: Annotated[
        str | None,
        typer.Option(
            "--output", "-o", help="File, directory or - (stdout); default: the offered name here"
        ),
    ] = None,
    as_json: Json = False,
) -> None:
    """Download a snapshot's PDF (streamed; no partial file is left on failure)."""
    to_stdout = output == "-"
    if to_stdout and as_json:
        raise UsageError("--json and -o - both want stdout; choose one")
    with _client(ctx) as client:
        if to_stdout:
            client.download(snapshot, sys.stdout.buffer)
            return
        saved = client.download(snapshot, output)
    emit(saved.to_dict()) if as_json else out.print(f"saved {saved.path} ({saved.bytes} bytes)")


@app.command("ls")
@handled
def ls(
    ctx: typer.Context,
    room: Annotated[str, typer.Argument(help="Room id")],
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first")] = 50,
    as_json: Json = False,
) -> None:
    """List a room's snapshots, newest first."""
    with _client(ctx) as client:
        found = list(client.list_snapshots(room, limit=limit))
    if as_json:
        emit([s.raw for s in found])
        return
    header = ("snapshot", "created", "status", "pages", "bytes", "title")
    rows = [
        (
            s.id,
            s.created_at.isoformat(timespec="seconds"),
            s.status,
            str(s.artifact.pages) if s.artifact else "",
            str(s.artifact.bytes) if s.artifact else "",
            s.title or "",
        )
        for s in found
    ]
    table = Table(*header, box=None)
    for row in rows:
        table.add_row(*row)
    # as wide as the rows need, so that no id is cut off, whatever the terminal's width
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    width = max(out.width, sum(widths) + 2 * len(widths) + 2)
    Console(width=width, highlight=False, markup=False).print(table)


def main() -> None:
    app()
