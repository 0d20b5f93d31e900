"""Checking a question before anything is loaded for it (pure, standard library only,
so the CLI can reject a bad question, or start work for a good one, at once)."""

from __future__ import annotations

from .errors import BadQuestion

MAX_QUESTION_CHARS = 1000


def check_question(question: str) -> str:
    """The question, stripped; BadQuestion when empty or too long."""
    text = (question or "").strip()
    if not text:
        raise BadQuestion("the question is empty; ask something, e.g. okdbot query \"Skopeo가 뭐야?\"")
    if len(text) > MAX_QUESTION_CHARS:
        raise BadQuestion(f"the question is {len(text)} characters long; ask in at most {MAX_QUESTION_CHARS}")
    return text
