"""Checks of single configuration values: ranges of numbers, link bases and
templates. Each check returns what is wrong with a value ("" when nothing);
config.py applies them with the value's line when okdbot.yaml is read."""

from __future__ import annotations

import string
import urllib.parse

LINK_FIELDS = ("base", "path", "start", "end")


def base_url(url: str) -> str:
    """A link base that file paths can be appended to: a folder address ends with "/"
    (`…/docs` and `…/docs/` both give `…/docs/Day26.md`)."""
    if url and not url.endswith(("/", "=")) and not urllib.parse.urlparse(url).query:
        return url + "/"
    return url


def url_problem(url: str) -> str:
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        return (f"must be the http(s) address of the notes folder, e.g. "
                f"https://github.com/OWNER/REPO/blob/main/docs/ (got {url!r})")
    # a note's path is appended to the address: after a fragment, a space or a finished query it
    # makes no link ("…/docs?ref_type=headsDay26.md"); a query ending in "=" takes the path as its value
    if any(ch.isspace() for ch in url):
        return f"holds a space; write it as %20 (got {url!r})"
    if (parsed.fragment or url.endswith("#")) and not url.endswith("/"):  # "#/" routes a site: paths follow
        return f"ends with a #fragment that a note's path cannot follow; leave it out (got {url!r})"
    if parsed.query and not url.endswith(("=", "/")):  # ?path=/docs/ (Azure DevOps) takes the path after it
        return (f"has a query (?{parsed.query}) that a note's path cannot follow; give the folder's address, "
                f"or a `link:` template for the rest (got {url!r})")
    return ""


def template_problem(template: str) -> str:
    """Why a `link` template cannot make links ("" when it can)."""
    fields = "{base} {path} {start} {end}"
    try:
        used = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        return f"is not a valid template ({exc}); use the fields {fields}, e.g. {{base}}{{path}}#L{{start}}-L{{end}}"
    unknown = sorted(used - set(LINK_FIELDS))
    if unknown:
        names = ", ".join("{" + name + "}" for name in unknown)
        return f"uses unknown field(s) {names}; the fields are {fields}"
    if "path" not in used:
        return "must contain {path} (the note's path), e.g. {base}{path}#L{start}-L{end}"
    formatted = [f"{{{name}{'!' + conv if conv else ''}{':' + spec if spec else ''}}}"
                 for _, name, spec, conv in string.Formatter().parse(template) if name is not None and (spec or conv)]
    if formatted:  # {start:>50000000} makes every answer 50 MB; {start:x} writes line numbers in hex
        return f"formats {', '.join(formatted)}; use the fields {fields} as they are"
    try:
        template.format(base="https://example.org/", path="a.md", start=1, end=2)
    except (ValueError, KeyError, IndexError, AttributeError) as exc:
        return f"cannot be filled in ({exc}); use the fields {fields} without format specifications"
    return ""


def glob_problem(pattern: str) -> str:
    """Why a source's glob cannot pick notes inside its folder ("" when it can)."""
    if not pattern:
        return "is empty; use a pattern relative to the source folder, e.g. **/*.md"
    if pattern.startswith("/"):
        return f"must be relative to the source folder, e.g. **/*.md (got {pattern!r})"
    if ".." in pattern.split("/"):
        return f"must stay inside the source folder: no '..' (got {pattern!r})"
    return ""


def path_problem(path) -> str:
    """Why a path cannot be used ("" when it can): a name that is not UTF-8 (Python
    keeps its bytes as surrogates) cannot go into the index, its links or the model's files."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        shown = str(path).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        return f"{shown} has a name that is not UTF-8; rename it or pass another path"
    return ""


def _not_empty(value: str) -> str:
    return "is empty; name a folder (relative to this file), or leave the key out for the default" if not value else ""


def _range(low: float | None, high: float | None, what: str = ""):
    """A check that a number lies within [low, high] (None: unbounded)."""

    def check(value) -> str:
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = (f"between {low} and {high}" if low is not None and high is not None
                      else f"at least {low}" if low is not None else f"at most {high}")
            return f"must be {bounds}{what}, got {value}"
        return ""

    return check


def _one_of(*allowed: str):
    """A check that a value is one of `allowed`."""

    def check(value) -> str:
        return "" if value in allowed else f"must be one of {', '.join(map(repr, allowed))}, got {value!r}"

    return check


# Checks of single values, by dotted key (sources.* apply to every source); each returns
# what is wrong ("" when nothing). Applied with the value's line, when the file is read.
CHECKS = {
    "index": _not_empty,  # "" would be this file's folder: a build there removes what looks like its own
    "data": _not_empty,
    "sources.url": url_problem,
    "sources.link": template_problem,
    "sources.glob": glob_problem,
    "model.name": lambda name: "is empty; name a model (multilingual-e5-small, all-MiniLM-L6-v2, a Hugging Face id "
                               "or a local folder), or leave the key out" if not name.strip() else "",
    "model.batch_size": _range(1, None),
    "retrieval.k": _range(1, 50, " passages"),
    "retrieval.lexical_weight": _range(0, None),
    "retrieval.dense_weight": _range(0, None),
    "retrieval.heading_boost": _range(0, None),
    "retrieval.definition_boost": _range(0, None),
    "retrieval.keep_ratio": _range(0, 1, " (a share of the best passage's score)"),
    "retrieval.coverage_threshold": _range(0, 1, " (a share of the question's concepts)"),
    "retrieval.gap_threshold": _range(0, 2, " (a difference of cosines)"),
    "retrieval.gap_threshold_korean": _range(0, 2, " (a difference of cosines)"),
    "retrieval.dense_candidates": _range(1, None),
    "retrieval.faiss": _one_of("flat", "hnsw"),
    "retrieval.hnsw_m": _range(2, 256, " (neighbours per vector; 16-64 is usual)"),
    "retrieval.hnsw_ef_search": _range(1, 100_000),
    "discord.cooldown_rate": _range(0, None),
    "discord.cooldown_seconds": _range(0, None, " seconds"),
    "discord.shards": _range(0, None, " (0: one connection, else the number of shards)"),
    "model.backend": _one_of("auto", "onnx", "torch"),
    "watch.fetch_seconds": _range(1, None, " seconds"),
    "watch.debounce_ms": _range(0, None, " milliseconds"),
}
