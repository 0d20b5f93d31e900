"""Notes in Git: links pinned to the indexed commit, and sources fetched from a remote.

The only module that runs `git` (plain subprocess calls, never a shell).

Pinning. A link to `…/blob/main/docs/Day26.md#L29` opens other lines once the
note changes upstream. When a source folder is inside a Git work tree of the
repository its url names (one of its remotes is that repository), the build
records the commit at HEAD and which notes it indexed exactly as they are in
that commit (the note's bytes hash to the blob HEAD holds); links of those
notes use the commit instead of the branch (`…/blob/<sha>/…`), so an answer
keeps opening the lines it quoted. A note with uncommitted edits keeps the
branch link (`okdbot doctor` says so).

Remote sources. A source with `git: URL` is cloned into the state folder
(`<data>/sources/<name>`, okdbot's own clone) and fetched by `okdbot index`
and by the watchers' timer; a failed fetch keeps indexing what was fetched
before.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from .errors import CorpusError
from .index.generations import build_lock

log = logging.getLogger("okdbot")

TIMEOUT = 300  # seconds for one git command (a first clone of a large repository)
# the ref in a folder address: …/blob/<ref>/… (GitHub, GitLab's …/-/blob/…), …/tree/<ref>/…,
# …/src/branch/<ref>/… (Gitea, Forgejo), …/src/<ref>/… (Bitbucket)
_REF = re.compile(r"(/(?:-/)?(?:blob|tree)/|/src/branch/|/src/)([^/?#]+)(?=[/?#]|$)")


class GitError(Exception):
    """A git command failed; its message is git's last line."""


def run_git(*args: str, cwd: Path, timeout: float = TIMEOUT) -> str:
    """stdout of `git ARGS` in `cwd`; GitError (git's first fatal/error line) when it fails or git is missing."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}  # fail rather than ask for a password
    if not Path(cwd).is_dir():
        raise GitError(f"{cwd} is not a folder")
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    except FileNotFoundError:
        raise GitError("git is not installed") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} took more than {timeout:.0f} s") from None
    if proc.returncode:
        lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()] or [f"exit {proc.returncode}"]
        # git explains after its "fatal:" line in wrapped prose ("…and the repository exists."): keep the cause
        cause = next((line for line in lines if line.startswith(("fatal: ", "error: "))), lines[0])
        raise GitError(cause.removeprefix("fatal: ").removeprefix("error: "))
    return proc.stdout


def blob_id(data: bytes) -> str:
    """The id Git gives a file with these bytes (SHA-1 object format)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass(frozen=True)
class WorkTree:
    """The commit at HEAD of the work tree holding a folder, and its files there."""

    head: str
    branch: str  # the checked-out branch ("" when detached)
    blobs: dict[str, str]  # path relative to the folder → blob id at HEAD
    remotes: tuple[str, ...] = ()  # the clone addresses of its remotes


def work_tree(folder: Path) -> tuple[WorkTree | None, str]:
    """(the Git work tree of `folder` at HEAD, "") or (None, why there is none)."""
    try:
        inside = run_git("rev-parse", "--is-inside-work-tree", cwd=folder, timeout=30).strip()
        if inside != "true":
            return None, "not in a Git work tree"
        if run_git("rev-parse", "--show-object-format", cwd=folder, timeout=30).strip() != "sha1":
            return None, "the repository uses SHA-256 object names (not pinned)"
        head = run_git("rev-parse", "--verify", "HEAD", cwd=folder, timeout=30).strip()
        branch = run_git("rev-parse", "--abbrev-ref", "HEAD", cwd=folder, timeout=30).strip()
        listing = run_git("ls-tree", "-r", "-z", "HEAD", ".", cwd=folder)
    except GitError as exc:
        return None, str(exc)
    try:
        remotes = tuple(run_git("config", "--get-regexp", r"^remote\..*\.url$", cwd=folder, timeout=30).split()[1::2])
    except GitError:  # none
        remotes = ()
    blobs = {}
    for entry in filter(None, listing.split("\0")):
        meta, path = entry.split("\t", 1)
        mode, kind, oid = meta.split()
        if kind == "blob":
            blobs[path] = oid
    return WorkTree(head, "" if branch == "HEAD" else branch, blobs, remotes), ""


def same_repository(url: str, remotes) -> bool:
    """Whether the web address `url` (…/OWNER/REPO/blob/…) names the repository of one of these clone addresses."""
    page = urllib.parse.urlparse(url)
    found = _REF.search(page.path)
    if not found:
        return False
    wanted = (page.netloc.lower(), page.path[:found.start()].strip("/").lower())
    for remote in remotes:
        match = re.match(r"^(?:[a-z+]+://(?:[^@/]+@)?([^/:]+)(?::\d+)?/|[^@/]+@([^:/]+):)(.+?)(?:\.git)?/?$", remote)
        if match and ((match.group(1) or match.group(2)).lower(), match.group(3).strip("/").lower()) == wanted:
            return True
    return False


def head(folder: Path) -> str | None:
    """The commit at HEAD of the work tree holding `folder`, None when there is none."""
    try:
        return run_git("rev-parse", "--verify", "HEAD", cwd=folder, timeout=30).strip()
    except (GitError, OSError):  # OSError: the folder is gone
        return None


def pin_url(url: str, commit: str, branch: str = "") -> str:
    """`url` (a folder address on a Git host) with its branch replaced by `commit`,
    or "" when the address shows no branch to replace."""
    if branch and "/" in branch:  # a branch name with slashes: only an exact match is safe
        for marker, pinned in (("/-/blob/", "/-/blob/"), ("/blob/", "/blob/"), ("/tree/", "/tree/"),
                               ("/src/branch/", "/src/commit/"), ("/src/", "/src/")):
            if f"{marker}{branch}/" in url:
                return url.replace(f"{marker}{branch}/", f"{pinned}{commit}/", 1)
        return ""
    found = _REF.search(url)
    if not found:
        return ""
    marker = "/src/commit/" if found.group(1) == "/src/branch/" else found.group(1)
    return f"{url[:found.start()]}{marker}{commit}{url[found.end():]}"


@dataclass(frozen=True)
class Pins:
    """Where the notes of a source are linked: `url` at `commit` for the notes in `exact`."""

    commit: str = ""
    url: str = ""  # the source's url with its branch replaced by the commit
    exact: frozenset[str] = frozenset()  # notes whose indexed bytes are the commit's
    why_not: str = ""  # why nothing is pinned


def pins(source, notes) -> Pins:
    """How the notes of `source` (as read for the index) can be linked at a commit."""
    if not source.url:
        return Pins(why_not="no url: links are file:// links")
    tree, why = work_tree(source.path)
    if tree is None:
        return Pins(why_not=why)
    url = pin_url(source.url, tree.head, tree.branch)
    if not url:
        return Pins(why_not=f"its url {source.url} shows no branch to replace by a commit")
    if not source.git and not same_repository(source.url, tree.remotes):  # a git: source is its own clone
        return Pins(why_not="no remote of its Git repository is the one its url names "
                            f"(remotes: {', '.join(tree.remotes) or 'none'})")
    exact = frozenset(n.path for n in notes if n.source.name == source.name and tree.blobs.get(n.path) == n.git_blob)
    return Pins(tree.head, url, exact)


def remote_url_base(remote: str, branch: str, subdir: str) -> str:
    """The web address of a folder of a GitHub or GitLab repository, from its clone
    address (https or ssh), or "" for other hosts."""
    found = re.match(r"^(?:https://|ssh://git@|git@)(github\.com|gitlab\.com)[:/](.+?)(?:\.git)?/?$", remote)
    if not found:
        return ""
    host, repo = found.groups()
    folder = "" if subdir in ("", ".") else subdir.strip("/") + "/"
    blob = "blob" if host == "github.com" else "-/blob"
    return f"https://{host}/{repo}/{blob}/{branch or 'HEAD'}/{folder}"


# --- sources fetched from a remote ---------------------------------------------------------

def fetch_sources(sources, update: bool = True) -> list[str]:
    """Clone every `git:` source that has no clone yet and, with `update`, bring
    the others up to date. Returns what changed ("name: <old> → <new>").
    CorpusError when a source has never been fetched and cannot be; a failed
    update is a warning and the notes fetched before are indexed."""
    changed = []
    for source in sources:
        if not source.git:
            continue
        with build_lock(source.clone.parent):  # one fetch of a clone at a time
            before = _head(source.clone)
            if before is None:
                _clone(source)
            elif update:
                try:
                    run_git("fetch", "--quiet", "--no-tags", "--depth", "1", "origin", cwd=source.clone)
                    run_git("reset", "--quiet", "--hard", "@{upstream}", cwd=source.clone)
                except GitError as exc:
                    log.warning("could not update source '%s' from %s (%s); indexing the notes fetched before",
                                source.name, source.git, exc)
            after = _head(source.clone)
        if after != before:
            changed.append(f"{source.name}: {(before or 'none')[:12]} → {(after or 'none')[:12]}")
            log.info("fetched source '%s' from %s at %s", source.name, source.git, (after or "")[:12])
    return changed


def _head(clone: Path) -> str | None:
    return head(clone) if (clone / ".git").exists() else None


def _clone(source) -> None:
    """A fresh clone of the source's branch, completed in a temporary folder first."""
    clone = source.clone
    tmp = clone.with_name(f".{clone.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    branch = ["--branch", source.branch] if source.branch else []
    try:
        run_git("clone", "--quiet", "--no-tags", "--single-branch", "--depth", "1", *branch, "--", source.git,
                str(tmp), cwd=clone.parent)
        shutil.rmtree(clone, ignore_errors=True)  # a folder left without .git by an interrupted clone
        os.rename(tmp, clone)
    except GitError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CorpusError(f"cannot fetch the notes of source '{source.name}' from {source.git} ({exc}); "
                          "check its git: address, branch: and the network") from None
