"""The ``snapshots`` command line driven as a user would, against both services as real
processes: exit codes, the PDF on disk, ``--json`` output (issue 14, the CLI)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.holds import MARKER, Holds
from support.pdf import pdf_text
from support.stack import Stack, free_port, running
from support.waiting import until_sync

SNAPSHOTS = str(Path(sys.executable).parent / "snapshots")
CHAT = [
    {"body": "Kick-off: the CLI review starts now."},
    {"body": "Line one\nline two of a note", "kind": "note"},
    "Plain string lines are bodies too.",
    {"body": "Decision: ship the command line tool.", "kind": "decision"},
] + [{"body": f"Filler message number {i:03d} about the roadmap."} for i in range(37)]


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with running() as s:
        yield s


def cli(
    stack: Stack | None, *args: str, user: str | None = "olivia", home: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``snapshots`` with the URL and token in the environment (``HOME`` isolated, so no
    user config file is read)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("SNAPSHOTS_")}
    base.update({"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "COLUMNS": "200"})
    if stack is not None:
        base["SNAPSHOTS_API_URL"] = stack.base
    if stack is not None and user is not None:
        base["SNAPSHOTS_TOKEN"] = stack.token(user)
    return subprocess.run(
        [SNAPSHOTS, *args], env={**base, **env}, capture_output=True, text=True, check=False
    )


def ok_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return json.loads(result.stdout)


def chat_file(folder: Path, lines: list[Any]) -> Path:
    path = folder / "chat.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n", encoding="utf-8")
    return path


def test_room_to_pdf_on_disk(stack: Stack, tmp_path: Path) -> None:
    room = cli(stack, "rooms", "create", "CLI review", home=tmp_path)
    assert room.returncode == 0, room.stderr
    room_id = room.stdout.strip()
    uuid.UUID(room_id)

    added = ok_json(
        cli(
            stack,
            "messages",
            "add",
            room_id,
            "--file",
            str(chat_file(tmp_path, CHAT)),
            "--batch-size",
            "10",  # five requests
            "--json",
            home=tmp_path,
        )
    )
    assert added["added"] == len(CHAT) and len(set(added["message_ids"])) == len(CHAT)

    out = tmp_path / "out" / "review.pdf"
    made = cli(stack, "create", room_id, "--title", "CLI Review", "--wait", "-o", str(out),
               home=tmp_path)  # fmt: skip
    assert made.returncode == 0, (made.stdout, made.stderr)
    assert "100%" in made.stderr  # the bar's last state
    first = made.stdout.split()[1]  # "snapshot <id> completed in … → <path> (<n> bytes)"
    assert made.stdout.startswith(f"snapshot {first} completed") and str(out) in made.stdout
    text, pages = pdf_text(out.read_bytes())
    assert pages >= 1 and "CLI Review" in text
    for line in ("Kick-off: the CLI review starts now.", "Plain string lines are bodies too.",
                 "Decision: ship the command line tool.", "Filler message number 036"):  # fmt: skip
        assert line in text
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".part")]

    again = ok_json(cli(stack, "create", room_id, "--title", "CLI Review", "--wait", "--json",
                        home=tmp_path))  # fmt: skip
    assert again["task"]["status"] == "completed" and again["task"]["cache"] == "memory"
    assert again["download"] is None

    task = ok_json(cli(stack, "status", again["task_id"], "--json", home=tmp_path))
    assert (task["status"], task["progress"]) == ("completed", 100)
    listed = ok_json(cli(stack, "ls", room_id, "--json", home=tmp_path))
    assert {s["id"] for s in listed} == {again["snapshot_id"], first}
    table = cli(stack, "ls", room_id, home=tmp_path)
    assert again["snapshot_id"] in table.stdout and "CLI Review" in table.stdout

    folder = tmp_path / "downloads"
    folder.mkdir()
    saved = ok_json(cli(stack, "download", again["snapshot_id"], "-o", str(folder), "--json",
                        home=tmp_path))  # fmt: skip
    path = Path(saved["path"])
    assert path.parent == folder and path.name == saved["filename"] and path.suffix == ".pdf"
    assert path.read_bytes() == out.read_bytes()  # same content, same bytes


def _messages(stack: Stack, room: str) -> int:
    r = stack.call("GET", f"/api/v1/rooms/{room}/messages?limit=200", "olivia")
    return len(r.json()["items"])


def task_requests(stack: Stack, task_id: str) -> dict[str, list[int]]:
    """The statuses the API answered (its access log) to ``GET /api/v1/tasks/{task_id}``
    (``"task"``) and to ``GET /api/v1/tasks/{task_id}/events`` (``"events"``)."""
    pattern = re.compile(rf"snapshot_api\.access: GET /api/v1/tasks/{task_id}(/events)? (\d{{3}})")
    seen: dict[str, list[int]] = {"task": [], "events": []}
    for match in pattern.finditer((stack.logs / "api.log").read_text(errors="replace")):
        seen["events" if match.group(1) else "task"].append(int(match.group(2)))
    return seen


def logged_wait(stack: Stack, task_id: str) -> dict[str, list[int]]:
    """``task_requests`` once the API has logged how the task was followed: a request is logged
    when its answer is finished, so a stream's line may come a moment after the CLI exits."""

    def logged() -> dict[str, list[int]] | None:
        seen = task_requests(stack, task_id)
        return seen if seen["events"] or seen["task"] else None

    return until_sync(logged, what=f"a request for task {task_id} in the API's access log")


def test_create_wait_follows_the_task_over_its_event_stream(stack: Stack, tmp_path: Path) -> None:
    room = ok_json(cli(stack, "rooms", "create", "Live CLI", "--json", home=tmp_path))["id"]
    stack.call("POST", f"/api/v1/rooms/{room}/messages", "olivia", json={"body": "Streamed"})
    out = tmp_path / "live.pdf"
    made = ok_json(cli(stack, "create", room, "--title", "Streamed", "--wait", "-o", str(out),
                       "--json", home=tmp_path))  # fmt: skip
    assert (made["followed"], made["fallback"]) == ("events", None)
    assert (made["task"]["status"], made["task"]["progress"]) == ("completed", 100)
    text, pages = pdf_text(out.read_bytes())
    assert pages == 1 and "Streamed" in text
    # The API saw one event stream for the task and not a single poll of it.
    assert logged_wait(stack, made["task_id"]) == {"task": [], "events": [200]}

    # The client against the real stream: a finished task answers its final state at once and
    # the iterator stops there; resuming past its final event id (a 204) yields nothing.
    with stack.client_for("olivia") as api:
        assert [t.raw for t in api.events(made["task_id"])] == [made["task"]]
        assert list(api.events(made["task_id"], last_event_id="999999")) == []

    # --poll: no stream at all, the task polled until it is finished
    polled = ok_json(cli(stack, "create", room, "--title", "Polled", "--wait", "--poll",
                         "--json", home=tmp_path))  # fmt: skip
    assert (polled["followed"], polled["fallback"]) == ("polling", None)
    assert polled["task"]["status"] == "completed"
    seen = logged_wait(stack, polled["task_id"])
    assert seen["events"] == [] and seen["task"] and set(seen["task"]) == {200}


@pytest.fixture(scope="module")
def one_stream_each() -> Iterator[tuple[Stack, Holds]]:
    """One API worker allowing one event stream per user, and a renderer with two workers and
    the hold hook: a render held in one of them keeps a task (and a stream of it) open while
    the other renders."""
    holds = Holds()
    try:
        with running(
            workers=1,
            SNAPSHOT_API_SSE_STREAMS_PER_USER="1",
            SNAPSHOT_RENDERER_CONCURRENCY="2",
            SNAPSHOT_RENDERER_USER_CONCURRENCY="2",
            **holds.env,
        ) as s:
            yield s, holds
    finally:
        holds.close()


def test_create_wait_falls_back_to_polling_when_refused_a_stream(
    one_stream_each: tuple[Stack, Holds], tmp_path: Path
) -> None:
    stack, holds = one_stream_each
    held_room = stack.call("POST", "/api/v1/rooms", "olivia", json={"name": f"Held {MARKER}"})
    held = stack.call("POST", f"/api/v1/rooms/{held_room.json()['id']}/snapshots", "olivia")
    assert held.status_code == 202, held.text
    hold = holds.next_sync()  # its render is in progress, and stays there
    room = ok_json(cli(stack, "rooms", "create", "Fallback", "--json", home=tmp_path))["id"]
    stack.call("POST", f"/api/v1/rooms/{room}/messages", "olivia", json={"body": "Polled"})
    out = tmp_path / "fallback.pdf"
    try:
        with (
            stack.client() as c,
            c.stream(
                "GET",
                f"/api/v1/tasks/{held.json()['task_id']}/events",
                headers=stack.auth("olivia"),
            ) as open_stream,
        ):
            assert open_stream.status_code == 200
            lines = open_stream.iter_lines()  # kept: closing it would close the stream
            next(line for line in lines if line.startswith("data:"))
            made = cli(stack, "create", room, "--title", "Fallback", "--wait", "-o", str(out),
                       "--json", home=tmp_path)  # fmt: skip
    finally:
        hold.release()
    result = ok_json(made)
    assert result["followed"] == "polling"
    assert result["fallback"].startswith("429 too_many_streams"), result["fallback"]
    assert result["task"]["status"] == "completed" and result["download"]["path"] == str(out)
    text, pages = pdf_text(out.read_bytes())
    assert pages == 1 and "Fallback" in text and "Polled" in text
    seen = task_requests(stack, result["task_id"])
    assert seen["events"] == [429] and seen["task"] and set(seen["task"]) == {200}


def test_refused_requests_exit_4_and_change_nothing(stack: Stack, tmp_path: Path) -> None:
    room = ok_json(cli(stack, "rooms", "create", "Refusals", "--json", home=tmp_path))["id"]
    member = cli(stack, "rooms", "member", room, "vera", "--role", "viewer", home=tmp_path)
    assert member.returncode == 0, member.stderr

    viewer = cli(stack, "create", room, "--wait", "--json", user="vera", home=tmp_path)
    assert viewer.returncode == 4, (viewer.stdout, viewer.stderr)
    error = json.loads(viewer.stdout)["error"]
    assert (error["kind"], error["status"], error["code"]) == ("refused", 403, "forbidden")
    assert "403 forbidden" in viewer.stderr

    stranger = cli(stack, "ls", str(uuid.uuid4()), home=tmp_path)
    assert stranger.returncode == 4 and "404 not_found" in stranger.stderr

    bad_scope = cli(stack, "create", room, "--page-size", "A3", home=tmp_path)
    assert bad_scope.returncode == 4 and "validation_error" in bad_scope.stderr
    assert stack.call("GET", f"/api/v1/rooms/{room}/snapshots", "olivia").json()["items"] == []

    # The API refuses the third batch (a NUL in a body): the first two stay, and the CLI says so.
    lines = [{"body": f"ok {i}"} for i in range(4)] + [{"body": "bad \u0000 byte"}]
    partial = cli(stack, "messages", "add", room, "-f", str(chat_file(tmp_path, lines)),
                  "--batch-size", "2", home=tmp_path)  # fmt: skip
    assert partial.returncode == 4, partial.stderr
    assert "4 of 5 messages were added" in partial.stderr
    assert _messages(stack, room) == 4
    again = cli(stack, "messages", "add", room, "-f", str(chat_file(tmp_path, lines[-1:])),
                "--json", home=tmp_path)  # fmt: skip
    error = json.loads(again.stdout)["error"]
    assert (again.returncode, error["status"], error["added"]) == (4, 422, 0)
    assert _messages(stack, room) == 4


def test_bad_input_file_is_a_usage_error_and_sends_nothing(stack: Stack, tmp_path: Path) -> None:
    room = ok_json(cli(stack, "rooms", "create", "Usage", "--json", home=tmp_path))["id"]
    path = tmp_path / "broken.jsonl"
    path.write_text('{"body": "fine"}\n{"body": "unterminated\n', encoding="utf-8")
    broken = cli(stack, "messages", "add", room, "--file", str(path), "--json", home=tmp_path)
    assert broken.returncode == 2 and f"{path}:2: not JSON" in broken.stderr
    assert json.loads(broken.stdout)["error"]["kind"] == "usage"
    assert _messages(stack, room) == 0

    no_token = cli(stack, "ls", room, user=None, home=tmp_path)
    assert no_token.returncode == 2 and "no token" in no_token.stderr
    bad_flag = cli(stack, "create", room, "--timeout", "-1", home=tmp_path)
    assert bad_flag.returncode == 2


def test_a_failed_render_exits_3_and_a_timed_out_wait_6(stack: Stack, tmp_path: Path) -> None:
    """A renderer whose budget no render fits in: the task ends ``failed`` and the CLI says so."""
    room = ok_json(cli(stack, "rooms", "create", "Doomed", "--json", home=tmp_path))["id"]
    for proc in list(stack.renderers):
        stack.stop_renderer(proc)
    # With no renderer the task stays queued: --timeout gives up with its own code.
    waited = cli(stack, "create", room, "--wait", "--timeout", "0.5", "--json", home=tmp_path)
    assert waited.returncode == 6, (waited.stdout, waited.stderr)
    assert json.loads(waited.stdout)["error"]["kind"] == "timeout"
    stack.start_renderer(SNAPSHOT_RENDERER_RENDER_TIMEOUT_SECONDS="0.001")
    failed = cli(stack, "create", room, "--title", "Never", "--wait", "-o",
                 str(tmp_path / "never.pdf"), "--json", home=tmp_path)  # fmt: skip
    assert failed.returncode == 3, (failed.stdout, failed.stderr)
    error = json.loads(failed.stdout)["error"]
    assert (error["kind"], error["code"]) == ("failed", "render_timeout")
    assert not (tmp_path / "never.pdf").exists()
    status = cli(stack, "status", error["task_id"], home=tmp_path)
    assert status.returncode == 3 and "render_timeout" in status.stdout


def test_unreachable_api_exits_5(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = cli(None, "--api-url", url, "--token", "t", "status", str(uuid.uuid4()), "--json",
                 home=tmp_path)  # fmt: skip
    assert result.returncode == 5, (result.stdout, result.stderr)
    assert json.loads(result.stdout)["error"]["kind"] == "unreachable"
    assert "API unreachable" in result.stderr


def test_help_lists_every_command(tmp_path: Path) -> None:
    result = cli(None, "--help", home=tmp_path)
    assert result.returncode == 0
    for command in ("create", "status", "download", "ls", "rooms", "messages"):
        assert f"  {command} " in result.stdout
