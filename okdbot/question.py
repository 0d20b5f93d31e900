"""Checking a question before anything is loaded for it (pure, standard library only,
so the CLI can reject a bad question, or start work for a good one, at once).

The CLI, the Discord bot and the retriever all go through check_question, so a
question is searched exactly as it is echoed: NFC-normalised, without
invisible characters (zero-width spaces and joiners, bidirectional controls,
Hangul fillers) or control characters, whitespace collapsed.
"""

from __future__ import annotations

import re
import unicodedata

from .errors import BadQuestion

MAX_QUESTION_CHARS = 1000
# Invisible letters (category Lo, so not caught as format characters): Hangul fillers.
_INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0")
# a terminal escape sequence (colour, cursor): pasted from a terminal, invisible there
_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


def clean_text(text: str) -> str:
    """`text` as people see it: terminal escape sequences, format (Cf: zero-width, bidi)
    and control (Cc) characters removed, and lone surrogates (Cs: bytes of a command-line
    argument that were not UTF-8), whitespace-like controls read as spaces, NFC-normalised,
    runs of whitespace made one space, stripped."""
    kept = []
    for ch in _ESCAPE.sub("", text or ""):
        if ch.isspace():
            kept.append(" ")
        elif ch not in _INVISIBLE and unicodedata.category(ch) not in ("Cc", "Cf", "Cs"):
            kept.append(ch)
    return " ".join(unicodedata.normalize("NFC", "".join(kept)).split())


def check_question(question: str) -> str:
    """The question, cleaned (clean_text); BadQuestion when empty or too long."""
    text = clean_text(question)
    if not text:
        raise BadQuestion("the question is empty; ask something, e.g. okdbot query \"Skopeo가 뭐야?\"")
    if len(text) > MAX_QUESTION_CHARS:
        raise BadQuestion(f"the question is {len(text)} characters long; ask in at most {MAX_QUESTION_CHARS}")
    return text
