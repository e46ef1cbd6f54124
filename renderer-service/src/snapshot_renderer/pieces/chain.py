"""Rendering a plan's pieces in order, each under its key, reusing what a cache holds.

Inside a section each piece's seam is where the piece before it ended, so its key is known only
then; sections and the cover are independent (the parallel fan-out over them is a later step:
this runs them one after another, in the calling process). A cache hit costs no render but
still gives the end position the next piece needs.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass

from snapshot_shared.messages import RenderOptions, SnapshotPayload

from snapshot_renderer.pieces.keys import Seam, piece_key
from snapshot_renderer.pieces.plan import Piece, PiecePlan
from snapshot_renderer.render.pieces import RenderedPiece, render_piece

Render = Callable[[SnapshotPayload, RenderOptions, Piece, Seam], RenderedPiece]


@dataclass(frozen=True)
class ChainedPiece:
    """A piece of the plan, its key, its rendering, and whether this run rendered it."""

    piece: Piece
    key: str
    rendered: RenderedPiece
    fresh: bool


def render_chain(
    plan: PiecePlan,
    fingerprint: str,
    cache: MutableMapping[str, RenderedPiece] | None = None,
    render: Render = render_piece,
) -> list[ChainedPiece]:
    """Every piece of ``plan`` in document order, from ``cache`` or rendered (and cached)."""
    cache = {} if cache is None else cache
    out: list[ChainedPiece] = []

    def one(piece: Piece, seam: Seam) -> RenderedPiece:
        key = piece_key(piece, plan.payload, plan.options, seam, fingerprint)
        rendered = cache.get(key)
        fresh = rendered is None
        if rendered is None:
            rendered = cache[key] = render(plan.payload, plan.options, piece, seam)
        out.append(ChainedPiece(piece, key, rendered, fresh))
        return rendered

    one(plan.cover, Seam())
    for section in plan.sections:
        end_y: float | None = None
        for piece in section:
            end_y = one(piece, Seam.after(piece, end_y)).end_y
    return out
