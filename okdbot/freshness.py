"""Is the live index still what the notes and the config say? (no model, no FAISS)

Compares the live generation's manifest with the notes on disk (per-note
SHA-256 of the bytes) and with the settings the index depends on. Used by
`okdbot doctor` to list stale files and by the watchers to skip a rebuild
when a file event changed nothing (an editor's temporary file, a touch).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .build import rebuild_reason
from .config import Settings, Source
from .embed import model_signature
from .errors import OkdbotError
from .glossary import file_digest, glossary_file
from .gitnotes import head
from .ingest import Skipped, scan_notes
from .index.generations import read_current
from .index.reader import read_manifest


@dataclass
class Freshness:
    """What differs between the notes/config and the live index."""

    generation: str | None
    built_at: str = ""
    new: list[str] = field(default_factory=list)  # "source/path" of notes the index lacks
    changed: list[str] = field(default_factory=list)  # notes whose bytes differ from the indexed ones
    deleted: list[str] = field(default_factory=list)  # indexed notes that are gone or now unreadable
    settings: list[str] = field(default_factory=list)  # config changes that need a rebuild
    skipped: list[Skipped] = field(default_factory=list)  # files that cannot be indexed now
    notes: int = 0  # readable notes now

    @property
    def fresh(self) -> bool:
        return bool(self.generation) and not (self.new or self.changed or self.deleted or self.settings)

    def summary(self) -> str:
        if not self.generation:
            return ", ".join(self.settings) or "no index yet"
        parts = [f"{len(v)} {k}" for k, v in (("changed", self.changed), ("new", self.new),
                                              ("deleted", self.deleted)) if v]
        return ", ".join(parts + self.settings) or "up to date"


def check_freshness(settings: Settings) -> Freshness:
    """Compare the notes of settings.sources and the settings with the live index.

    Raises CorpusError when a source folder is missing."""
    notes, skipped = scan_notes(settings.sources)
    name, damage = read_current(settings.index_dir)
    result = Freshness(name, skipped=skipped, notes=len(notes))
    if damage:  # not fresh: a watcher rebuilds it
        result.settings.append("the live index is damaged")
    if name is None:
        return result
    try:
        manifest = read_manifest(settings.index_dir / name)
    except (OSError, OkdbotError):  # gone, unreadable, or not of the shape a build writes
        result.settings.append("the live index is unreadable")
        return result
    result.built_at = manifest.get("built_at", "")
    indexed: dict[str, str] = manifest.get("notes", {})
    current = {f"{n.source.name}/{n.path}": n.sha256 for n in notes}
    left_out = {f"{s['source']}/{s['path']}": s.get("sha256") for s in manifest.get("skipped", [])}
    current = {k: v for k, v in current.items() if left_out.get(k) != v}  # skipped by the build, as it is now
    result.new = sorted(set(current) - set(indexed))
    result.deleted = sorted(set(indexed) - set(current))
    result.changed = sorted(k for k in set(current) & set(indexed) if current[k] != indexed[k])
    result.settings = settings_changes(manifest, settings)
    return result


def settings_changes(manifest: dict, settings: Settings) -> list[str]:
    """Differences between the config and what the index was built with."""
    out = []
    reason = rebuild_reason(manifest, model_signature(settings.model))
    if reason:
        out.append(reason)
    built = [Source.from_dict(s) for s in manifest.get("sources", [])]
    if [s.to_dict() for s in built] != [s.to_dict() for s in settings.sources]:
        out.append("the configured sources changed (folders, globs or links)")
    elif any(b.commit and head(b.path) not in (b.commit, None) for b in built):
        out.append("the notes' Git commit changed (links are pinned to the commit indexed)")
    r = settings.retrieval
    if (manifest.get("glossary") or {}).get("sha256") != file_digest(glossary_file(r.synonyms)):
        out.append("the synonyms file changed")
    if manifest.get("retrieval") != r.recorded():
        out.append("the retrieval settings changed")
    built = (manifest.get("faiss", "flat"), manifest.get("hnsw_m", r.hnsw_m), manifest.get("hnsw_ef_search"))
    wanted = (r.faiss, r.hnsw_m, r.hnsw_ef_search)
    if built[0] != wanted[0]:
        out.append(f"the index uses the {built[0]} vector index, the config says {wanted[0]}")
    elif wanted[0] == "hnsw" and built != wanted:
        out.append("the HNSW settings changed (hnsw_m / hnsw_ef_search)")
    return out
