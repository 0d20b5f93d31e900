"""What a search returns: passages of note lines with where they come from.

A light module (no numpy, no index): answer formatting, the bot and the
feedback store import it without loading anything heavy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_LATIN = re.compile(r"[A-Za-z]")
_HANGUL = re.compile(r"[\uac00-\ud7a3]")


@dataclass(frozen=True)
class Line:
    number: int  # 1-based line number in the source file
    text: str
    relevant: bool  # holds a term of the question


@dataclass
class Passage:
    """Consecutive source lines that answer, with where they come from."""

    rank: int
    score: float
    source: str
    file: str
    heading: str
    start_line: int
    end_line: int
    url: str
    lines: list[Line]


@dataclass
class Suggestion:
    heading: str
    url: str


@dataclass
class Result:
    question: str
    answered: bool
    passages: list[Passage]
    suggestions: list[Suggestion] = field(default_factory=list)
    korean: bool = False
    generation: str = ""
    top_score: float = 0.0
    context: str = ""  # the earlier question(s) a follow-up was read with
    coverage: float = 0.0  # share of the question's concepts the best passage holds ...
    gap: float = 0.0  # ... and how far its cosine stands out: what decided `answered`
    changed: list[str] = field(default_factory=list)  # quoted notes edited since indexing: their lines may have moved


def is_korean(text: str) -> bool:
    """Written in Korean: at least as many words hold Hangul as hold only Latin letters
    ("Skopeo가 뭐야?" is Korean about an English name; "what is 쿠버네티스" is English)."""
    words = text.split()
    hangul = sum(1 for w in words if _HANGUL.search(w))
    return hangul > 0 and hangul >= sum(1 for w in words if not _HANGUL.search(w) and _LATIN.search(w))
