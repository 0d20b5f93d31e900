"""The bot's own small database (stdlib SQLite): answers, 👍/👎 votes, sync state.

Every answer the bot sends is recorded with its question, the passages it
cited and the index generation it came from; the vote buttons carry the
answer's id, so a vote can be traced to exactly what was shown, even after a
restart or a re-index. A 👎 may say what was wrong (one of REASONS, and a few
words). The questions the notes serve badly (declined, or given a 👎) are
grouped by their nearest section for `okdbot gaps`. User ids are stored only
hashed, never in the clear.

The file lives outside the index folder's generations (which builds delete):
`discord.feedback_db` in okdbot.yaml, by default `feedback.sqlite` beside the
index folder.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from .config import Settings
from .errors import OkdbotError
from .retrieve import Result

VOTES = ("up", "down")
# What a 👎 can say was wrong, as stored → as `okdbot feedback` prints it
REASONS = {"wrong_passage": "wrong passage", "outdated": "outdated", "not_in_notes": "not in the notes",
           "other": "other"}
COMMENT_MAX = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
  id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, question TEXT NOT NULL,
  answered INTEGER NOT NULL, generation TEXT NOT NULL, citations TEXT NOT NULL,
  asker TEXT NOT NULL, channel INTEGER, context TEXT NOT NULL DEFAULT '', thread INTEGER,
  nearest TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS votes (
  answer_id INTEGER NOT NULL REFERENCES answers(id), voter TEXT NOT NULL,
  vote TEXT NOT NULL CHECK (vote IN ('up', 'down')), time TEXT NOT NULL,
  reason TEXT NOT NULL DEFAULT '', comment TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (answer_id, voter)
);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# Columns added since the first release, added to older databases when opened.
_ADDED = {"answers": {"context": "TEXT NOT NULL DEFAULT ''", "thread": "INTEGER", "nearest": "TEXT NOT NULL DEFAULT ''"},
          "votes": {"reason": "TEXT NOT NULL DEFAULT ''", "comment": "TEXT NOT NULL DEFAULT ''"}}


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
    reason: str = ""  # a 👎's key in REASONS ("" when none was given)
    comment: str = ""  # a 👎's own words

    def to_json(self) -> dict:
        """The documented `okdbot feedback --json` object."""
        return {"answer_id": self.answer_id, "vote": self.vote, "time": self.time, "voter": self.voter,
                "question": self.question, "context": self.context, "answered": self.answered,
                "generation": self.generation, "citations": self.citations, "reason": self.reason,
                "comment": self.comment}


@dataclass(frozen=True)
class GapQuestion:
    answer_id: int
    time: str
    question: str
    context: str
    url: str  # the passage quoted, or for a declined question the section suggested
    declined: bool  # answered "not in the notes"
    down: int  # how many 👎
    reasons: list[str]  # what those 👎 said was wrong (keys of REASONS)
    comments: list[str]


@dataclass
class Gap:
    """The questions whose nearest section is `heading`: where the notes fall short."""

    heading: str  # "" when no section was recorded
    url: str  # the section as suggested for a declined question, else the newest passage quoted
    questions: list[GapQuestion]

    def to_json(self) -> dict:
        """The documented `okdbot gaps --json` object."""
        return {"section": self.heading, "url": self.url, "count": len(self.questions),
                "declined": sum(q.declined for q in self.questions),
                "down": sum(q.down > 0 for q in self.questions), "newest": self.questions[0].time,
                "questions": [asdict(q) for q in self.questions]}


class FeedbackStore:
    """Thread-safe: every call opens its own short connection (WAL mode)."""

    def __init__(self, path: Path):
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._db() as db:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(_SCHEMA)
                _add_columns(db)
                problem = _schema_problem(db)
        except (OSError, sqlite3.Error) as exc:
            raise OkdbotError(f"cannot open the feedback database {path} ({exc}); "
                              "set discord.feedback_db in okdbot.yaml to a writable file") from None
        if problem:
            raise OkdbotError(f"{path} is not okdbot's feedback database ({problem}); move it aside "
                              "or set discord.feedback_db in okdbot.yaml to another file")

    @contextmanager
    def _db(self):
        with closing(sqlite3.connect(self.path, timeout=10)) as db, db:
            yield db

    def record_answer(self, result: Result, asker: int, channel: int | None, thread: int | None = None) -> int:
        """Remember what was answered; returns the answer id the vote buttons carry.
        `thread`: the bot's thread the conversation goes on in, if any."""
        citations = [{"heading": p.heading, "file": p.file, "start_line": p.start_line,
                      "end_line": p.end_line, "url": p.url} for p in result.passages]
        near = (result.passages or result.suggestions or [None])[0]  # a declined question's nearest section
        nearest = json.dumps({"heading": near.heading, "url": near.url}, ensure_ascii=False) if near else ""
        with self._db() as db:
            cursor = db.execute(
                "INSERT INTO answers (time, question, answered, generation, citations, asker, channel, context, "
                "thread, nearest) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (_now(), result.question, int(result.answered), result.generation,
                 json.dumps(citations, ensure_ascii=False), user_hash(asker), channel, result.context, thread,
                 nearest))
            return int(cursor.lastrowid)

    def set_thread(self, answer_id: int, thread: int) -> None:
        """The conversation of an answer goes on in `thread` (opened under it)."""
        with self._db() as db:
            db.execute("UPDATE answers SET thread=? WHERE id=?", (thread, answer_id))

    def conversation(self, answer_id: int) -> str | None:
        """What an answer was asked with: its context and question, oldest first (None if unknown)."""
        with self._db() as db:
            row = db.execute("SELECT context, question FROM answers WHERE id=?", (answer_id,)).fetchone()
        return " ".join(part for part in row if part) if row else None

    def thread_conversation(self, thread: int) -> str | None:
        """The conversation so far in one of the bot's threads: that of its latest answer."""
        with self._db() as db:
            row = db.execute("SELECT id FROM answers WHERE thread=? ORDER BY id DESC LIMIT 1", (thread,)).fetchone()
        return self.conversation(row[0]) if row else None

    def vote(self, answer_id: int, voter: int, vote: str) -> str | None:
        """Record (or change) one user's vote; returns the answer's question, None if unknown."""
        if vote not in VOTES:
            raise ValueError(f"vote must be one of {VOTES}")
        with self._db() as db:
            row = db.execute("SELECT question FROM answers WHERE id=?", (answer_id,)).fetchone()
            if row is None:
                return None
            db.execute("INSERT INTO votes (answer_id, voter, vote, time) VALUES (?,?,?,?) "
                       "ON CONFLICT (answer_id, voter) DO UPDATE SET vote=excluded.vote, time=excluded.time, "
                       "reason=CASE excluded.vote WHEN 'up' THEN '' ELSE reason END, "
                       "comment=CASE excluded.vote WHEN 'up' THEN '' ELSE comment END",
                       (answer_id, user_hash(voter), vote, _now()))
        return row[0]

    def explain(self, answer_id: int, voter: int, reason: str, comment: str = "") -> bool:
        """Store what a 👎 says was wrong (recording the 👎 if it is not yet);
        False when the answer is unknown."""
        if reason not in REASONS:
            raise ValueError(f"reason must be one of {tuple(REASONS)}")
        with self._db() as db:
            if db.execute("SELECT 1 FROM answers WHERE id=?", (answer_id,)).fetchone() is None:
                return False
            db.execute("INSERT INTO votes (answer_id, voter, vote, time, reason, comment) VALUES (?,?,'down',?,?,?) "
                       "ON CONFLICT (answer_id, voter) DO UPDATE SET vote='down', time=excluded.time, "
                       "reason=excluded.reason, comment=excluded.comment",
                       (answer_id, user_hash(voter), _now(), reason, comment[:COMMENT_MAX]))
        return True

    def votes(self, bad_only: bool = False) -> list[Vote]:
        """Votes, newest first, each with the answer it judges."""
        where = "WHERE v.vote = 'down'" if bad_only else ""
        with self._db() as db:
            rows = db.execute(
                "SELECT v.answer_id, v.vote, v.time, v.voter, a.question, a.answered, a.generation, a.citations, "
                f"a.context, v.reason, v.comment FROM votes v JOIN answers a ON a.id = v.answer_id {where} "
                "ORDER BY v.time DESC, v.answer_id DESC").fetchall()
        return [Vote(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6], json.loads(r[7]), r[8], r[9], r[10])
                for r in rows]

    def gaps(self, since: datetime | None = None) -> list["Gap"]:
        """Questions the notes serve badly (declined, or given a 👎), asked since
        `since`, grouped by their nearest section; newest first, in groups and within."""
        with self._db() as db:
            rows = db.execute(
                "SELECT id, time, question, context, answered, nearest, citations FROM answers a WHERE time >= ? "
                "AND (answered = 0 OR EXISTS (SELECT 1 FROM votes v WHERE v.answer_id = a.id AND v.vote = 'down')) "
                "ORDER BY time DESC, id DESC", (since.isoformat(timespec="seconds") if since else "",)).fetchall()
            downs: dict[int, list[tuple[str, str]]] = {}
            for answer_id, reason, comment in db.execute(
                    "SELECT answer_id, reason, comment FROM votes WHERE vote = 'down' ORDER BY time DESC"):
                downs.setdefault(answer_id, []).append((reason, comment))
        groups: dict[str, Gap] = {}
        for answer_id, time, question, context, answered, nearest, citations in rows:
            heading, url = _nearest(nearest, citations)
            votes = downs.get(answer_id, [])
            groups.setdefault(heading, Gap(heading, "", [])).questions.append(GapQuestion(
                answer_id, time, question, context, url, not answered, len(votes),
                [r for r, _ in votes if r], [c for _, c in votes if c]))
        for gap in groups.values():  # a declined question was pointed at the whole section: link that
            gap.url = next((q.url for q in gap.questions if q.declined), gap.questions[0].url)
        return list(groups.values())

    def get_state(self, key: str) -> str | None:
        with self._db() as db:
            row = db.execute("SELECT value FROM state WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_state(self, key: str, value: str) -> None:
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO state VALUES (?,?)", (key, value))


def _nearest(nearest: str, citations: str) -> tuple[str, str]:
    """(heading, url) of an answer's nearest section; older answers recorded only their citations."""
    if nearest:
        near = json.loads(nearest)
        return near["heading"], near["url"]
    cited = json.loads(citations)
    return (cited[0]["heading"], cited[0]["url"]) if cited else ("", "")


def _schema_problem(db: sqlite3.Connection) -> str:
    """What the tables of an existing database lack of okdbot's ("" when nothing):
    a table of the same name made by something else is left as it is."""
    for table, columns in _COLUMNS.items():
        have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        missing = [c for c in columns if c not in have]
        if missing:
            return f"table {table} has no column {', '.join(missing)}"
    return ""


_COLUMNS = {"answers": ("id", "time", "question", "answered", "generation", "citations", "asker", "channel"),
            "votes": ("answer_id", "voter", "vote", "time"), "state": ("key", "value")}


def _add_columns(db: sqlite3.Connection) -> None:
    for table, columns in _ADDED.items():
        have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        for name, kind in columns.items():
            if name not in have:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
