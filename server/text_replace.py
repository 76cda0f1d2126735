"""The plan of a text replacement (``PUT /api/docs/{name}/text``): the line edits that make the
live text equal a plain text. Pure; runs in the workers like :func:`server.jobs.text_edits`.

A plain text (a txt export, edited and sent back) has no embeds, the live text may have some
(other Yjs apps put them there): lines are compared without their embeds, so a line that only
differs by its embeds is left alone, and so are the embeds in it. A changed line is replaced
whole, its embeds with it (an embed cannot be made again from text).
"""

from __future__ import annotations

from difflib import SequenceMatcher

from .exports import NOT_TEXT
from .jobs import TextEdit


def replacement_edits(indexed: str, target: str) -> list[TextEdit]:
    """The edits (last first, UTF-8 byte offsets of ``indexed``: see
    :func:`server.jobs.text_edits`) that turn ``indexed`` (the live text, each embed as one
    NOT_TEXT) into ``target``, whose text it then is."""
    before = indexed.splitlines(keepends=True)
    # Embeds after the last line break: no line of the target can stand for them, and no edit
    # needs to reach past them (what is added at the end goes in before them).
    if before and not before[-1].strip(NOT_TEXT):
        before.pop()
    after = target.splitlines(keepends=True)
    offsets = [0]
    for line in before:
        offsets.append(offsets[-1] + len(line.encode("utf-8")))
    plain = [line.replace(NOT_TEXT, "") for line in before]
    edits: list[TextEdit] = []
    ops = SequenceMatcher(None, plain, after, autojunk=False).get_opcodes()
    for tag, i1, i2, j1, j2 in reversed(ops):
        if tag != "equal":
            edits.append((offsets[i1], offsets[i2], "".join(after[j1:j2])))
    return edits
