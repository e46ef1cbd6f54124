"""The bench's own rooms, created through the API with the shared client (batches of 500)."""

from __future__ import annotations

import random
from collections.abc import Iterator

from snapshot_client import Client

OWNER = "olivia"
MEMBERS = (("eddie", "editor", "Eddie Example"), ("vera", "viewer", "Vera Example"))
BATCH = 500
_VOCABULARY = (
    "budget review ship launch design sprint retro customer feedback metrics latency render "
    "queue cache snapshot timeline decision note agreed follow up owner deadline draft final "
    "numbers chart slide room member invite export archive quarter planning risk blocker"
)
WORDS = _VOCABULARY.split()
KINDS = ("message", "message", "message", "message", "note", "decision")


def text_bodies(count: int, seed: int = 1) -> list[str]:
    """Plain English-like bodies of 60–240 characters, with the odd line break."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        words = [rng.choice(WORDS) for _ in range(rng.randint(10, 40))]
        if i % 7 == 0:
            words.insert(len(words) // 2, "\n")
        out.append(f"#{i} " + " ".join(words).replace(" \n ", "\n").capitalize())
    return out


def cjk_bodies(count: int, chars: int, seed: int = 2) -> list[str]:
    """Bodies of random common CJK ideographs: every new glyph grows the embedded font subset,
    which is how a 100-message room makes a ~1 MB PDF that still renders in seconds."""
    rng = random.Random(seed)
    return ["".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(chars)) for _ in range(count)]


def _messages(bodies: list[str]) -> Iterator[dict[str, str]]:
    for i, body in enumerate(bodies):
        yield {"body": body, "kind": KINDS[i % len(KINDS)]}


def create_room(client: Client, name: str, bodies: list[str]) -> str:
    """A room owned by the client's user with two more members and ``bodies`` as its
    messages."""
    room = client.create_room(name).id
    for user, role, display in MEMBERS:
        client.put_member(room, user, role, display)
    client.add_messages(room, _messages(bodies), batch_size=BATCH)
    return room
