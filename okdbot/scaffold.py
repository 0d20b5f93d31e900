"""`okdbot init`: a commented okdbot.yaml for your own notes."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from .config_checks import base_url, path_problem, url_problem
from .errors import ConfigError, CorpusError

TEMPLATE = """\
# okdbot configuration, written by `okdbot init`. Paths are relative to this file.
# Check it with `okdbot doctor --no-discord`; docs/configuration.md lists every key.
sources:
  - name: {name}{name_pad}# part of each passage's identity: keep it once indexed
    path: {path}{path_pad}# the folder of your Markdown notes
    glob: "**/*.md"           # which files (hidden folders are skipped)
{url_line}
    # link: "{{base}}{{path}}#L{{start}}-L{{end}}"   # only for hosts other than GitHub/GitLab/Gitea
    # Notes in a Git remote instead of a folder here: replace path with
    #   git: https://github.com/OWNER/REPO.git
    #   branch: main
    #   path: docs            # the folder inside the repository
index: index                  # the index folder, inside the state folder
# data: /var/lib/okdbot       # the state folder: all okdbot writes (default: beside this file; $OKDBOT_DATA)
retrieval:
  k: 5                        # passages per answer (1-50)
  # synonyms: synonyms.yaml   # your own glossary instead of okdbot's, e.g. - [image, 이미지]
# model:
#   name: multilingual-e5-small  # the bundled offline model (Korean and English); all-MiniLM-L6-v2 (English)
# discord:
#   guild_id: 123456789012345678   # register /ask in this server only (instantly)
"""
_COLUMN = 30  # where the comments of the template start


def write_config(config: Path, notes: Path, url: str | None, force: bool = False) -> tuple[str, tuple[int, int]]:
    """Write `config` for the notes in `notes`; (the url used, (notes it will index, files it will skip))).
    ConfigError when the file exists (unless `force`) or the url is no web address;
    CorpusError when the folder does not exist."""
    if config.is_dir():  # --force would not help: a folder is never replaced
        raise ConfigError(f"{config} is a folder; pass --config with the path of a file to write, e.g. {config}/okdbot.yaml")
    if config.exists() and not force:
        raise ConfigError(f"{config} already exists; edit it, or pass --force to replace it")
    if not notes.is_dir():
        what = "is a file, not a folder" if notes.exists() else "does not exist"
        raise CorpusError(f"notes folder {notes} {what}; pass the folder of your Markdown notes")
    for what, place in (("notes folder", notes.resolve()), ("config file", config.resolve())):
        if path_problem(place):
            raise ConfigError(f"{what} {path_problem(place)}")
    if url:
        problem = url_problem(url)
        if problem:
            raise ConfigError(f"--url {problem}")
        url = base_url(url)
    else:
        url = url_from_git(notes)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", notes.resolve().name).strip("-.") or "notes"
    path = os.path.relpath(notes.resolve(), config.resolve().parent)
    url_line = (f"    url: {url}   # the folder's web page: links open the quoted lines" if url else
                "    # url: https://github.com/OWNER/REPO/blob/main/docs/   # the folder's web page: "
                "links open the quoted lines (without it: file:// links)")
    text = TEMPLATE.format(name=name, name_pad=_pad("  - name: " + name), path=_yaml(path),
                           path_pad=_pad("    path: " + _yaml(path)), url_line=url_line)
    config.write_text(text, encoding="utf-8")
    return url, _readable_notes(notes, name)


def _readable_notes(folder: Path, name: str) -> tuple[int, int]:
    """(notes `okdbot index` will read, files it will skip) in `folder`, as it will see them."""
    from .config import Source
    from .ingest import scan_notes

    notes, skipped = scan_notes((Source(name, folder.resolve()),))
    return len(notes), len(skipped)


def url_from_git(notes: Path) -> str:
    """The GitHub/GitLab page of `notes` on its branch, from the work tree's origin ("" when unknown)."""
    from .gitnotes import GitError, remote_url_base, run_git

    try:
        remote = run_git("remote", "get-url", "origin", cwd=notes, timeout=30).strip()
        inside = run_git("rev-parse", "--show-prefix", cwd=notes, timeout=30).strip()
    except (GitError, OSError):
        return ""
    try:
        branch = run_git("symbolic-ref", "--quiet", "--short", "HEAD", cwd=notes, timeout=30).strip()
    except GitError:  # a detached HEAD
        branch = ""
    return remote_url_base(remote, branch, inside or ".")


def _pad(text: str) -> str:
    return " " * max(1, _COLUMN - len(text))


def _yaml(text: str) -> str:
    """A plain YAML scalar when safe, else a double-quoted one."""
    if re.fullmatch(r"[\w./-]+", text):
        return text
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar: \n, \t kept
