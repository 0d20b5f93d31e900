"""The bot's own small database (stdlib SQLite): answers, 👍/👎 votes, sync state.

Every answer the bot sends is recorded with its question, the passages it
cited and the index generation it came from; the vote buttons carry the
answer's id, so a vote can be traced to exactly what was shown, even after a
restart or a re-index. User ids are stored only hashed, never in the clear.

The file lives outside the index folder's generations (which builds delete):
`discord.feedback_db` in okdbot.yaml, by default `feedback.sqlite` beside the
index folder.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .config import Settings
from .errors import OkdbotError
from .retrieve import Result

VOTES = ("up", "down")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
  id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, question TEXT NOT NULL,
  answered INTEGER NOT NULL, generation TEXT NOT NULL, citations TEXT NOT NULL,
  asker TEXT NOT NULL, channel INTEGER, context TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS votes (
  answer_id INTEGER NOT NULL REFERENCES answers(id), voter TEXT NOT NULL,
  vote TEXT NOT NULL CHECK (vote IN ('up', 'down')), time TEXT NOT NULL,
  PRIMARY KEY (answer_id, voter)
);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def feedback_path(settings: Settings) -> Path:
    """Where the bot keeps its database: discord.feedback_db, else feedback.sqlite
    in the state folder (by default beside the index folder)."""
    return settings.discord.feedback_db or settings.data_dir / "feedback.sqlite"


def user_hash(user_id: int) -> str:
    """A stable pseudonym for a Discord user id."""
    return hashlib.sha256(f"okdbot-user:{user_id}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Vote:
    answer_id: int
    vote: str
    time: str
    voter: str
    question: str
    answered: bool
    generation: str
    citations: list[dict]
    context: str = ""  # the earlier question(s) a follow-up was read with

    def to_json(self) -> dict:
        """The documented `okdbot feedback --json` object."""
        return {"answer_id": self.answer_id, "vote": self.vote, "time": self.time, "voter": self.voter,
                "question": self.question, "context": self.context, "answered": self.answered,
                "generation": self.generation, "citations": self.citations}


class FeedbackStore:
    """Thread-safe: every call opens its own short connection (WAL mode)."""

    def __init__(self, path: Path):
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._db() as db:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(_SCHEMA)
                if "context" not in {row[1] for row in db.execute("PRAGMA table_info(answers)")}:
                    db.execute("ALTER TABLE answers ADD COLUMN context TEXT NOT NULL DEFAULT ''")  # older databases
        except (OSError, sqlite3.Error) as exc:
            raise OkdbotError(f"cannot open the feedback database {path} ({exc}); "
                              "set discord.feedback_db in okdbot.yaml to a writable file") from None

    @contextmanager
    def _db(self):
        with closing(sqlite3.connect(self.path, timeout=10)) as db, db:
            yield db

    def record_answer(self, result: Result, asker: int, channel: int | None) -> int:
        """Remember what was answered; returns the answer id the vote buttons carry."""
        citations = [{"heading": p.heading, "file": p.file, "start_line": p.start_line,
                      "end_line": p.end_line, "url": p.url} for p in result.passages]
        with self._db() as db:
            cursor = db.execute(
                "INSERT INTO answers (time, question, answered, generation, citations, asker, channel, context) "
                "VALUES (?,?,?,?,?,?,?,?)",
                (_now(), result.question, int(result.answered), result.generation,
                 json.dumps(citations, ensure_ascii=False), user_hash(asker), channel, result.context))
            return int(cursor.lastrowid)

    def conversation(self, answer_id: int) -> str | None:
        """What an answer was asked with: its context and question, oldest first (None if unknown)."""
        with self._db() as db:
            row = db.execute("SELECT context, question FROM answers WHERE id=?", (answer_id,)).fetchone()
        return " ".join(part for part in row if part) if row else None

    def vote(self, answer_id: int, voter: int, vote: str) -> str | None:
        """Record (or change) one user's vote; returns the answer's question, None if unknown."""
        if vote not in VOTES:
            raise ValueError(f"vote must be one of {VOTES}")
        with self._db() as db:
            row = db.execute("SELECT question FROM answers WHERE id=?", (answer_id,)).fetchone()
            if row is None:
                return None
            db.execute("INSERT INTO votes VALUES (?,?,?,?) ON CONFLICT (answer_id, voter) "
                       "DO UPDATE SET vote=excluded.vote, time=excluded.time",
                       (answer_id, user_hash(voter), vote, _now()))
        return row[0]

    def votes(self, bad_only: bool = False) -> list[Vote]:
        """Votes, newest first, each with the answer it judges."""
        where = "WHERE v.vote = 'down'" if bad_only else ""
        with self._db() as db:
            rows = db.execute(
                "SELECT v.answer_id, v.vote, v.time, v.voter, a.question, a.answered, a.generation, a.citations, a.context "
                f"FROM votes v JOIN answers a ON a.id = v.answer_id {where} "
                "ORDER BY v.time DESC, v.answer_id DESC").fetchall()
        return [Vote(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6], json.loads(r[7]), r[8]) for r in rows]

    def get_state(self, key: str) -> str | None:
        with self._db() as db:
            row = db.execute("SELECT value FROM state WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_state(self, key: str, value: str) -> None:
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO state VALUES (?,?)", (key, value))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
