"""A snapshot cut into pieces: the cover, then chunks of the room's timeline grouped in sections.

Chunk boundaries are a property of the room's timeline, counted from its first message, so they
do not move when messages are appended (``chunks``); a snapshot's pieces and their keys follow
from them (``plan``, ``keys``). Not used by the job path yet (issue 11, first landing).
"""
