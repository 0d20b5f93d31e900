"""The synonyms file: groups of equivalent terms, applied to questions only.

Like a search engine's synonym filter. The file is a YAML list; each item is
a group of at least two terms that mean the same thing, in any language:

    - [image, 이미지]
    - [autoscaling, auto scaling, 자동 스케일링, 오토스케일링]

Terms are analysed like the notes (see lexical.Analyzer), so a term may be a
phrase of several words. This module only reads and checks the file; what a
group does to a question is lexical.Analyzer.concepts.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path

import yaml

from .config import compose_yaml
from .errors import ConfigError

EXAMPLE = "[image, 이미지]"
DEFAULT_FILE = Path(__file__).with_name("synonyms.yaml")  # the glossary shipped with okdbot


@dataclass(frozen=True)
class SynonymGroup:
    """Equivalent terms, and where they were written (for error messages)."""

    terms: tuple[str, ...]
    where: str = ""  # "path:line"


def load_synonyms(path: Path) -> tuple[SynonymGroup, ...]:
    """The groups of a synonyms file; ConfigError (one line, naming the line) when
    the file is missing, malformed or not a list of groups of terms."""
    node = compose_yaml(path, "synonyms file", missing="fix retrieval.synonyms in okdbot.yaml")
    if node is None:
        return ()
    if not isinstance(node, yaml.SequenceNode):
        raise ConfigError(f"{path}:{node.start_mark.line + 1}: the synonyms file must be a list of groups, "
                          f"e.g. - {EXAMPLE}")
    return tuple(_group(item, path) for item in node.value)


def _group(node: yaml.Node, path: Path) -> SynonymGroup:
    where = f"{path}:{node.start_mark.line + 1}"
    if not isinstance(node, yaml.SequenceNode):
        raise ConfigError(f"{where}: a synonym group must be a list of terms, e.g. {EXAMPLE}")
    terms = []
    for item in node.value:
        if not isinstance(item, yaml.ScalarNode) or not str(item.value).strip():
            raise ConfigError(f"{path}:{item.start_mark.line + 1}: each synonym must be a non-empty word or "
                              f"phrase, e.g. {EXAMPLE}")
        terms.append(unicodedata.normalize("NFC", str(item.value).strip()))  # as the notes (ingest)
    if len(terms) < 2:
        raise ConfigError(f"{where}: a synonym group needs at least two terms, e.g. {EXAMPLE}")
    return SynonymGroup(tuple(terms), where)
