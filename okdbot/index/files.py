"""Checksums and durable writes for index files."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..errors import IndexCorrupt

MANIFEST = "manifest.json"


def checksums(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under `folder` but the manifest, by POSIX relative path."""
    return {p.relative_to(folder).as_posix(): sha256(p)
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST}


def special_file(path: Path) -> bool:
    """Something there that is neither a folder nor a regular file: a device (/dev/zero never
    ends), a pipe (waits for ever), a socket. Never read one as a file."""
    return path.exists() and not path.is_dir() and not path.is_file()


def file_stamp(path: Path | None) -> tuple[int, int, int] | None:
    """What tells an edited or replaced file from the one seen before: (mtime, size, inode);
    None when there is no file."""
    try:
        st = path.stat() if path else None
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino) if st else None


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file; IndexCorrupt when it cannot be read (FileNotFoundError passes)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise IndexCorrupt(f"cannot read index file {path} ({exc.strerror}); run `okdbot index --full`") from None
    return digest.hexdigest()


def write_durably(path: Path, text: str) -> None:
    """Write `text` and flush it to disk before returning."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def fsync_tree(folder: Path) -> None:
    """Flush every file and folder under `folder` (and itself) to disk."""
    for path in [*folder.rglob("*"), folder]:
        if path.is_dir():
            fsync_dir(path)
        else:
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
