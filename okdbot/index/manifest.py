"""What readers take from inside a manifest, checked before they take it.

No checksum covers the manifest itself, so a damaged or hand-edited one must be
recognised by its content: every value a query, `okdbot doctor` or a build reads
is of the type and range a build writes. One problem found is enough to call the
generation damaged (reader.read_manifest: "run `okdbot index --full`").
"""

from __future__ import annotations

import math

from ..config_checks import template_problem
from . import dense

_WHOLE = ("k", "dense_candidates")  # of the recorded retrieval settings; the others are numbers
_SOURCE_TEXTS = ("glob", "url", "link", "git", "branch", "commit", "commit_url")
_MODEL_SIZES = ("dim", "max_seq_length")
_MODEL_IDS = ("bos", "eos", "unk", "pad")
_MODEL_TEXTS = ("model", "query_prefix", "passage_prefix")


def content_problem(manifest: dict) -> str:
    """What is wrong inside a manifest of the current format ("" when nothing)."""
    for check in (_vectors, _retrieval, _sources, _notes, _skipped, _query_model, _glossary):
        problem = check(manifest)
        if problem:
            return problem
    return ""


def _vectors(m: dict) -> str:
    kind = m.get("faiss", "flat")
    return "" if kind in dense.BACKENDS else f"'faiss' names no vector index kind ({kind!r})"


def _retrieval(m: dict) -> str:
    for key, value in m.get("retrieval", {}).items():
        if key in _WHOLE and not (_whole(value) and value >= 1):
            return f"'retrieval.{key}' is not a positive whole number"
        if not (_number(value) and math.isfinite(value)):
            return f"'retrieval.{key}' is not a number"
    return ""


def _sources(m: dict) -> str:
    for source in m["sources"]:
        name = source["name"]
        for key in _SOURCE_TEXTS:
            if not isinstance(source.get(key, ""), str):
                return f"source {name!r}: '{key}' is not text"
        if not _texts(source.get("pinned", [])):
            return f"source {name!r}: 'pinned' is not a list of paths"
        if source.get("link") and template_problem(source["link"]):
            return f"source {name!r}: 'link' {template_problem(source['link'])}"
    return ""


def _notes(m: dict) -> str:
    """Every indexed note belongs to a source the manifest names (answers link through it)."""
    names = [source["name"] for source in m["sources"]]  # a name may hold "/" itself
    strays = [key for key in m.get("notes", {}) if not any(key.startswith(f"{name}/") for name in names)]
    return f"notes of no source it names ({strays[0]!r})" if strays else ""


def _skipped(m: dict) -> str:
    for item in m.get("skipped", []):
        if not all(isinstance(value, str) for value in item.values()):
            return "an item of 'skipped' holds a value that is not text"
    return ""


def _query_model(m: dict) -> str:
    record = m.get("query_model") or {}
    for key in _MODEL_SIZES:
        if key in record and not (_whole(record[key]) and 1 <= record[key] <= 100_000):
            return f"'query_model.{key}' is not a positive whole number"
    for key in _MODEL_IDS:
        if key in record and not (_whole(record[key]) and 0 <= record[key] < 2**31):
            return f"'query_model.{key}' is not a token id"
    for key in _MODEL_TEXTS:
        if key in record and not isinstance(record[key], str):
            return f"'query_model.{key}' is not text"
    return ""


def _glossary(m: dict) -> str:
    glossary = m.get("glossary") or {}
    groups, tokens = glossary.get("groups", []), glossary.get("tokens", {})
    if not (isinstance(groups, list) and all(isinstance(g, list) and _texts(g) for g in groups)):
        return "'glossary.groups' is not a list of term lists"
    if not (isinstance(tokens, dict) and all(isinstance(t, list) and _texts(t) for t in tokens.values())):
        return "'glossary.tokens' does not map terms to token lists"
    if not (_whole(glossary.get("mined", 0)) and glossary.get("mined", 0) >= 0):
        return "'glossary.mined' is not a count"
    if not all(isinstance(glossary.get(key, ""), str) for key in ("file", "sha256")):
        return "'glossary' names its synonyms file with something that is not text"
    return ""


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _texts(values) -> bool:
    return isinstance(values, list) and all(isinstance(v, str) for v in values)
