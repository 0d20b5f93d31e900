"""Re-index when notes change: `okdbot index --watch` and `okdbot discord --watch`.

File events only *wake* the watcher; what it does is always decided by
comparing the notes with the live index (okdbot.freshness), and every build
reads the files as they are then. So a burst of saves, an editor's
write-to-temp-then-rename, a renamed or deleted note all end in an index that
matches the final files, and events about nothing (a touch, a swap file)
cost a hash of the notes, not a build. Events arriving during a build are
kept by the watcher and trigger one more check afterwards. Builds never
overlap (index.generations.build_lock, also across processes). A failed rebuild is
logged and the watcher goes on; the live index stays as it was.

    watch(settings, on_rebuilt=None, stop_event=None, reload=None)   # blocks until stop_event is set

`okdbot index --watch` runs it in the foreground; `okdbot discord --watch`
runs it in a thread of the bot process (off the event loop). `on_rebuilt(report)`
runs after each published build; the bot passes its Retriever's refresh.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Callable

from .config import Settings
from .errors import CorpusError, OkdbotError

log = logging.getLogger("okdbot")

FIRST_TICK_MS = 300  # the watcher yields once, empty, as soon as it is active


class Rebuilder:
    """Checks the notes against the index and rebuilds when they differ.

    Keeps the embedding model and the Korean analyser loaded between builds,
    so a one-note edit is re-indexed in about a second."""

    def __init__(self, settings: Settings, embedder=None, analyzer=None):
        self.settings = settings
        self._embedder = embedder
        self._analyzer = analyzer
        self._lock = threading.Lock()
        self._warned: set[tuple[str, str, str]] = set()  # notes named as unindexable

    def with_settings(self, settings: Settings) -> "Rebuilder":
        """A rebuilder for `settings`: this one when the model is the same (it stays loaded)."""
        if settings.model != self.settings.model:
            return Rebuilder(settings, analyzer=self._analyzer)
        with self._lock:
            self.settings = settings
        return self

    def preload(self) -> "Rebuilder":
        """Load the model and the analyser now rather than at the first edit."""
        if self._embedder is None:
            from .embed.exports import build_embedder, ensure_export
            from .index.generations import build_lock

            with build_lock(self.settings.index_dir):
                build_embedder(self.settings, ensure_export(self.settings))  # kept for the builds to come
        self._get_analyzer().load()
        return self

    def build(self, full: bool = False):
        """An unconditional (incremental, or with full=True complete) build."""
        from .build import build_index

        with self._lock:
            return build_index(self.settings, self._get_embedder(), analyzer=self._get_analyzer(), full=full,
                               progress=None)

    def rebuild_if_stale(self):
        """The BuildReport of a rebuild, or None when the index was already fresh."""
        from .build import build_index
        from .freshness import check_freshness

        with self._lock:
            state = check_freshness(self.settings)
            self._warn_skipped(state.skipped)
            if state.fresh:
                log.debug("notes unchanged since %s", state.generation)
                return None
            log.info("notes changed (%s): re-indexing", state.summary())
            report = build_index(self.settings, self._get_embedder(), analyzer=self._get_analyzer(),
                                 progress=False)
        log.info("re-indexed: %d files, %d chunks (%d embedded, %d removed) in %.1f s → %s",
                 report.files, report.chunks, report.embedded, report.removed, report.seconds,
                 report.generation)
        return report

    def _warn_skipped(self, skipped) -> None:
        """Name each note that cannot be indexed (not UTF-8, too large…) once, as `okdbot index` does:
        a new one may leave the index fresh, so no build would say it."""
        for skip in skipped:
            if (skip.source, skip.path, skip.reason) not in self._warned:
                self._warned.add((skip.source, skip.path, skip.reason))
                log.warning("skipped %s/%s: %s", skip.source, skip.path, skip.reason)

    def _get_embedder(self):
        """The embedder given to this Rebuilder; None: the configured model's
        (loaded once per process, see okdbot/embed/exports.build_embedder)."""
        return (lambda: self._embedder) if self._embedder is not None else None

    def _get_analyzer(self):
        if self._analyzer is None:
            from .lexical import Analyzer

            self._analyzer = Analyzer()
        return self._analyzer


def watch(settings: Settings, on_rebuilt: Callable | None = None, stop_event: threading.Event | None = None,
          rebuilder: Rebuilder | None = None, reload: Callable[[], Settings] | None = None) -> None:
    """Block, re-indexing on every change of the notes, until stop_event is set.

    When the config file changes, `reload()` reads the settings again and the notes are
    indexed with them from then on (a source added or moved is watched); a config with an
    error keeps the settings before. Without `reload` a warning says to restart."""
    import watchfiles

    rebuilder = rebuilder or Rebuilder(settings)
    config = _Stamped(settings.config_path)
    started = False
    while True:
        fetch, roots, moved, catch_up = _Fetcher(settings), watched_roots(settings), False, True
        for changes in watchfiles.watch(*roots, watch_filter=event_filter(settings), stop_event=stop_event,
                                        yield_on_timeout=True, raise_interrupt=False, **_timing(settings)):
            fetch.when_due()  # new commits of git: sources change files: their events follow
            edited = config.changed()
            # the first tick also catches an edit made while the first build or the bot started
            new = _reloaded(settings, reload) if edited or (not started and reload) else None
            if new is not None:
                settings, rebuilder = new, rebuilder.with_settings(new)
                moved = True  # watch the new folders and files with the new filter
            if not started:
                started = True
                _announce(settings, roots)
            elif not changes and new is None and not catch_up:
                continue
            # the first tick of each watch catches up with edits made before it was live (at start,
            # or between the re-index for a new config and watching its folders): a no-op if none
            catch_up = False
            _log_changes(changes)
            _run(rebuilder, on_rebuilt)
            if moved:
                break  # watch the new folders
        if not moved:
            return


class _Stamped:
    """A file whose edits are noticed by its stat, checked on each tick."""

    def __init__(self, path: Path | None):
        from .index.files import file_stamp

        self.path, self._read = path, lambda: file_stamp(path)
        self.stamp = self._read()

    def changed(self) -> bool:
        stamp = self._read()
        if stamp == self.stamp:
            return False
        self.stamp = stamp
        return True


def _reloaded(settings: Settings, reload: Callable[[], Settings] | None) -> Settings | None:
    """The settings of the edited config file, or None to keep the ones in use (said why)."""
    if reload is None:
        log.warning("%s changed: this watcher keeps the settings it started with; restart it to use the new ones",
                    settings.config_path)
        return None
    try:
        from .gitnotes import fetch_sources

        new = reload()
        fetch_sources(new.sources, update=False)  # a git: source just added is cloned first
        watched_roots(new)  # a missing notes folder: keep watching the ones we have
    except Exception as exc:  # OkdbotError, or an OS error reading it: the watcher must live on
        log.debug("traceback", exc_info=True)
        log.error("%s changed but cannot be used, the watcher keeps the settings before: %s", settings.config_path,
                  exc if isinstance(exc, OkdbotError) else f"{type(exc).__name__}: {exc}")
        return None
    if new == settings:
        return None
    log.info("%s changed: indexing with its new settings", settings.config_path)
    return new


class _Fetcher:
    """Fetches the git: sources every watch.fetch_seconds (their first clone at once)."""

    def __init__(self, settings: Settings):
        from .gitnotes import fetch_sources

        self.sources = [s for s in settings.sources if s.git]
        self.every = settings.watch.fetch_seconds
        self.due = time.monotonic() + self.every
        fetch_sources(self.sources, update=False)

    def when_due(self) -> None:
        if not self.sources or time.monotonic() < self.due:
            return
        from .gitnotes import fetch_sources

        self.due = time.monotonic() + self.every
        try:
            fetch_sources(self.sources)
        except OkdbotError as exc:
            log.error("fetching the notes failed, the index is unchanged: %s", exc)


def watched_roots(settings: Settings) -> list[str]:
    """The source folders, without folders already inside another one, and the folder of a
    configured synonyms file (it is read at build time: an edit needs a re-index)."""
    roots: list[Path] = []
    if settings.retrieval.synonyms is not None and settings.retrieval.synonyms.parent.is_dir():
        roots.append(settings.retrieval.synonyms.parent.resolve())
    for source in settings.sources:
        if not source.path.is_dir():
            from .ingest import missing_folder

            raise missing_folder(source)
        roots.append(source.path.resolve())
    if not settings.sources:
        raise CorpusError("no notes configured; add a source to okdbot.yaml or pass --corpus DIR")
    return [str(r) for r in sorted(set(roots)) if not any(o != r and o in r.parents for o in roots)]


def event_filter(settings: Settings) -> Callable[[object, str], bool]:
    """Events under a source folder, except hidden files/folders and the index itself, and
    events of the configured synonyms file.

    Deliberately broad (a renamed folder reports only the folder): an event
    only triggers a comparison, which is cheap when nothing changed."""
    roots = [s.path.resolve() for s in settings.sources]
    synonyms = settings.retrieval.synonyms.resolve() if settings.retrieval.synonyms else None
    index = settings.index_dir.resolve()
    state = settings.data_dir.resolve()  # its heartbeat and feedback files change all the time

    def accept(_change, path: str) -> bool:
        p = Path(path)
        if p == synonyms:
            return True
        if p == index or index in p.parents:
            return False
        if p.parent == state and p.name.startswith(("heartbeat.json", ".heartbeat-", "feedback.sqlite")):
            return False
        for root in roots:
            if p == root or root in p.parents:
                return not any(part.startswith(".") for part in p.relative_to(root).parts)
        return False

    return accept


def _timing(settings: Settings) -> dict:
    """watchfiles yields once a `step` passed with no new change, which
    happens between 1 and 2 steps after the last one: a step of half the
    debounce starts a re-index within about debounce_ms of the last save.
    It yields after `debounce` ms at most, so endless saves still re-index."""
    step = max(25, settings.watch.debounce_ms // 2)
    return {"step": step, "debounce": 20 * step, "rust_timeout": FIRST_TICK_MS}


def _announce(settings: Settings, roots: list[str]) -> None:
    log.info("watching %s for changes (debounce %d ms)", ", ".join(roots), settings.watch.debounce_ms)


def _log_changes(changes) -> None:
    for change, path in sorted(changes, key=lambda c: c[1])[:20]:
        log.debug("%s %s", getattr(change, "name", change), path)


def _rebuild(rebuilder: Rebuilder):
    """One check-and-rebuild; errors are logged, never raised (the watcher lives on)."""
    try:
        return rebuilder.rebuild_if_stale()
    except OkdbotError as exc:
        log.error("re-index failed, the index is unchanged: %s", exc)
    except Exception as exc:
        log.debug("traceback", exc_info=True)
        log.error("re-index failed, the index is unchanged: %s: %s", type(exc).__name__, exc)
    return None


def _run(rebuilder: Rebuilder, on_rebuilt: Callable | None) -> None:
    report = _rebuild(rebuilder)
    if report is not None and on_rebuilt is not None:
        try:
            on_rebuilt(report)
        except Exception:
            log.exception("the handler of a finished re-index failed")
