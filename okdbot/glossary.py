"""The glossary: groups of terms that mean the same thing, applied to questions.

Two sources, both resolved when the index is built and stored with it (so an
index answers the same way from any folder, and a query needs no Kiwi to read it):

- the team's synonyms file (retrieval.synonyms; by default the one shipped inside
  okdbot, okdbot/synonyms.yaml): English ↔ Korean domain terms, see okdbot/synonyms.py;
- the glosses the notes write themselves: a Korean term with its English in
  parentheses (`지표(metric)`, `망*(Mesh)`), an English term with its Korean
  (`NSG(네트워크 보안 그룹)`), an abbreviation with its expansion (`OTA(Over-the-air)`,
  `Infrastructure as Code (IaC)`). A Korean term the notes gloss with two different
  English terms is an example list, not a gloss (`서버(Linux)`, `서버(window)`), and is skipped.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from .errors import ConfigError
from .synonyms import DEFAULT_FILE, SynonymGroup, load_synonyms

# Every pattern starts only at the start of a word and every repetition is bounded, so a
# note's longest line costs linear time (an unbounded run would make a long line quadratic).
_HANGUL_THEN_LATIN = re.compile(r"(?<![\uac00-\ud7a3])([\uac00-\ud7a3]{1,12})[*_]{0,2}[ \t]?\(([A-Za-z][A-Za-z \-]{1,40})\)")
_LATIN_THEN_HANGUL = re.compile(
    r"(?<![\w.+\-])([A-Za-z][A-Za-z0-9+\-]{0,30}(?: [A-Za-z][A-Za-z0-9+\-]{0,30}){0,3})[ \t]?"
    r"\(([\uac00-\ud7a3][\uac00-\ud7a3 ]{0,20})\)")
_ABBREVIATION = re.compile(r"(?<![\w.])([A-Z][A-Za-z0-9]{1,9})[ \t]?\(([A-Za-z][A-Za-z \-]{3,80})\)")
_EXPANSION = re.compile(
    r"(?<![A-Za-z\-])([A-Za-z][A-Za-z\-]{1,30}(?: [A-Za-z][A-Za-z\-]{1,30}){1,7})[ \t]?\(([A-Z][A-Za-z0-9]{1,9})\)")
_LONGEST_LINE = 10_000  # a gloss sits in a line of prose; longer lines (dumps, minified data) are not read
_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_SMALL_WORDS = {"of", "the", "and", "to", "as", "a", "an", "for", "in", "on", "by", "with"}
_MAX_TOKENS = 4  # a gloss is a term, not a sentence


@dataclass(frozen=True)
class Glossary:
    """Term groups with each term's analysed tokens (as stored in an index manifest)."""

    groups: tuple[tuple[str, ...], ...] = ()
    tokens: dict[str, list[str]] = field(default_factory=dict)
    mined: int = 0  # how many groups come from the notes
    file: str = ""  # the synonyms file the other groups come from
    sha256: str = ""  # of that file, when it was read

    def to_json(self) -> dict:
        return {"groups": [list(g) for g in self.groups], "tokens": self.tokens, "mined": self.mined,
                "file": self.file, "sha256": self.sha256}

    @classmethod
    def from_json(cls, data: dict | None) -> "Glossary":
        if not data:
            return cls()
        return cls(tuple(tuple(g) for g in data.get("groups", ())), dict(data.get("tokens", {})),
                   int(data.get("mined", 0)), data.get("file", ""), data.get("sha256", ""))


def file_digest(path: Path | None) -> str:
    """sha256 of a synonyms file ("" when there is none or it cannot be read)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest() if path and path.is_file() else ""
    except OSError:
        return ""


def build_glossary(groups: Sequence[SynonymGroup], texts: Iterable[str], analyze, file: Path | None = None,
                   known: dict[str, list[str]] | None = None) -> Glossary:
    """The synonyms file's groups plus the glosses mined from `texts`, every term
    analysed with `analyze` (text → tokens) unless `known` has it. A term of the file
    without a searchable word is a ConfigError naming its line; mined glosses without
    a searchable word on both sides are dropped."""
    mined = [g for g in mine_glosses(texts) if g not in {tuple(x.terms) for x in groups}]
    terms = {t for g in groups for t in g.terms} | {t for g in mined for t in g}
    known = known or {}
    tokens = {t: known[t] if t in known else list(dict.fromkeys(analyze(t))) for t in sorted(terms)}
    for group in groups:
        for term in group.terms:
            if not tokens[term]:
                raise ConfigError(f"{group.where}: the synonym '{term}' has no searchable word "
                                  "(only stop words or particles); remove it from the group")
    kept = [g for g in mined if all(0 < len(tokens[t]) <= _MAX_TOKENS and _whole(t, tokens[t]) for t in g)
            and len({tuple(tokens[t]) for t in g}) > 1]
    # every analysed term is kept (also those of glosses not used): the next build analyses only new ones
    return Glossary(tuple(tuple(g.terms) for g in groups) + tuple(kept), tokens, len(kept), str(file or ""),
                    file_digest(file))


def mine_glosses(texts: Iterable[str]) -> list[tuple[str, str]]:
    """(term, gloss) pairs the notes write, in first-seen order, consistent ones only."""
    pairs: list[tuple[str, str]] = []
    for text in (line for text in texts for line in text.split("\n") if "(" in line and len(line) <= _LONGEST_LINE):
        for korean, english in _HANGUL_THEN_LATIN.findall(text):
            if _plain_word(english):
                pairs.append((korean, english.strip()))
        for english, korean in _LATIN_THEN_HANGUL.findall(text):
            if not english.lower().startswith("vs "):
                pairs.append((english.strip(), korean.strip()))
        pairs += [(a, e.strip()) for a, e in _ABBREVIATION.findall(text) if _abbreviates(a, e)]
        pairs += [(a, e.strip()) for e, a in _EXPANSION.findall(text) if _abbreviates(a, e)]
    glosses: dict[str, set[str]] = {}
    for term, gloss in pairs:
        glosses.setdefault(term.lower(), set()).add(gloss.lower())
    consistent = [(t, g) for t, g in dict.fromkeys(pairs) if len(glosses[t.lower()]) == 1]
    return list({(t.lower(), g.lower()): (t, g) for t, g in consistent}.values())


def _whole(term: str, tokens: list[str]) -> bool:
    """A Korean term is all content words (a noun phrase): `구성하기` or `않은` is not."""
    return not _HANGUL.search(term) or "".join(tokens) == re.sub(r"\s+", "", term)


def _plain_word(english: str) -> bool:
    """A common word or phrase, not an abbreviation or a product name (MariaDB, KVM)."""
    words = english.split()
    return 0 < len(words) <= 3 and not any(
        w.isupper() and len(w) > 1 or re.search(r"[a-z][A-Z]", w) for w in words)


def _abbreviates(abbreviation: str, expansion: str) -> bool:
    """Whether the capitals of `abbreviation` are the initials of the expansion's words."""
    letters = [c for c in abbreviation if c.isupper()]
    words = [w for w in re.split(r"[\s\-]+", expansion) if w]
    every = [w[0].upper() for w in words]
    content = [w[0].upper() for w in words if w.lower() not in _SMALL_WORDS]
    return len(letters) >= 2 and letters in (every, content)


def glossary_file(configured: Path | None) -> Path:
    """The synonyms file a build reads: retrieval.synonyms, else the one shipped with okdbot."""
    return configured or DEFAULT_FILE


def read_glossary_file(configured: Path | None) -> tuple[Path, tuple[SynonymGroup, ...]]:
    path = glossary_file(configured)
    return path, load_synonyms(path)

