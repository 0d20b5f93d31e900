"""Where a model's export lives and when it is made again.

An export (see okdbot/embed/__init__.py) is written once per model, backend
export format and fingerprint of the model's files, into
index/models/<model>-<fingerprint>-<backend><format>/, and reused while every
file still has its recorded sha256. Building several indexes of one model in
one process (a bot, the tests) exports once and links the folder's files.
"""

from __future__ import annotations


import logging
import os
import re
import shutil
from pathlib import Path

from ..config import Settings
from ..errors import OkdbotError, StorageError
from . import Embedder, backend_for

log = logging.getLogger("okdbot")

# fingerprint → the export folder this process last wrote or verified
_EXPORTED: dict[str, Path] = {}
_EMBEDDERS: dict[tuple[str, str], Embedder] = {}  # (export folder, its files' digests) → its build embedder


def ensure_export(settings: Settings, embedder: Embedder | None = None) -> dict | None:
    """The manifest entry of the configured model's export (its record plus "path",
    relative to the index, and "fingerprint"), exporting it first when needed.
    Call only while holding the index's build lock. None when the model cannot be
    exported (a warning says why); questions then use the model itself."""
    from ..index.generations import MODELS, publish_model
    from .ort import verified_model

    backend = backend_for(settings.model)
    models = settings.index_dir / MODELS
    if models.exists() and not models.is_dir():  # no export could ever be written: say so, don't index without
        raise StorageError(f"cannot keep the model exports in {models}: a file is in the way where okdbot's "
                           "folder belongs; remove or rename it and run again")
    try:
        fingerprint = backend.fingerprint(settings.model)
        if fingerprint is None:
            log.info("fast queries need the model in a local folder; queries will use sentence-transformers")
            return None
        model_id = backend.model_id(settings.model)
        name = f"{re.sub(r'[^A-Za-z0-9.]+', '-', model_id).strip('-')}-{fingerprint[:12]}-" \
               f"{backend.name}{backend.export_format}"
        folder = settings.index_dir / MODELS / name
        record = _reusable(folder, model_id, backend.export_format)
        done = _EXPORTED.get(fingerprint)
        if record is None and done and done != folder and _reusable(done, model_id, backend.export_format):
            record = publish_model(settings.index_dir, name, lambda tmp: _copy(done, tmp))
        elif record is None:
            record = publish_model(settings.index_dir, name, lambda tmp: backend.export(settings.model, tmp, embedder))
            log.info("exported the model to %s", folder)
        _EXPORTED[fingerprint] = folder
        verified_model(folder, record["files"])  # records the files' stamps: queries need not hash them
        return {**record, "path": f"{MODELS}/{name}", "fingerprint": fingerprint}
    except Exception as exc:  # exporters raise many types; an index is still possible without the export
        log.warning("could not export the model (%s: %s)", type(exc).__name__,
                    str(exc).splitlines()[0][:200] if str(exc) else "")
        return None


def _copy(source: Path, target: Path) -> dict:
    """Another index's export of the same model (just verified), hard-linked where the file
    system allows, else copied. Every open verifies the files, so damage to a linked file is
    found in both indexes, and the next build of each writes a fresh export."""
    from .ort import read_export

    def link_or_copy(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=link_or_copy)
    return read_export(target)


def _reusable(folder: Path, model_id: str, export_format: int) -> dict | None:
    """The export record of `folder` if it is complete, for `model_id`, and its files verify."""
    from .ort import read_export, verified_model

    if not folder.is_dir():
        return None
    try:
        record = read_export(folder)
        if record.get("model") != model_id or record.get("format") != export_format:
            return None
        verified_model(folder, record["files"])
        return record
    except OkdbotError as exc:
        log.warning("exporting the model again: %s", exc)
    except KeyError:
        log.warning("exporting the model again: %s holds an export of an older okdbot", folder)
    return None


def build_embedder(settings: Settings, query_model: dict | None) -> Embedder:
    """The document embedder of a build: the configured backend's (opened from its
    export, `query_model` from ensure_export, when the backend runs from it), kept
    for the next build of this process: a watcher re-indexes an edit without
    loading the model again."""
    backend = backend_for(settings.model)
    export = None
    if query_model and not backend.exports_from_embedder:
        export = (settings.index_dir / query_model["path"], query_model)
    key = (backend.name, backend.model_id(settings.model), str(export[0]) if export else "",
           repr(sorted(query_model["files"].items())) if export else "")
    if key not in _EMBEDDERS:
        _EMBEDDERS.clear()  # one model at a time
        _EMBEDDERS[key] = backend.embedder(settings.model, export)
    return _EMBEDDERS[key]
