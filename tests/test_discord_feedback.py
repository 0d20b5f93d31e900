"""What maintainers learn from the bot: what a 👎 said was wrong (`okdbot feedback`)
and which questions the notes do not answer well (`okdbot gaps`). Real discord.py
on simcord and the real feedback database, read back through the real CLI."""

from __future__ import annotations

import json
import re
import sqlite3
from contextlib import closing

import pytest
import simcord
from simcord import interactions as sim_interactions

from okdbot import cli
from okdbot.answer import strings
from okdbot.feedback import FeedbackStore, user_hash

from .test_discord import (UNANSWERABLE, VOTE, make_bot, notes, retriever, settings,  # noqa: F401 (fixtures)
                           simcord_bot, vote_ids, world)


def okdbot(settings, notes, capsys, *args: str) -> str:
    """`okdbot ARGS` in-process, with a config naming the bot's feedback database; its stdout."""
    folder = settings.discord.feedback_db.parent
    config = folder / "okdbot.yaml"
    config.write_text(f"index: {notes.index_dir}\ndiscord:\n  feedback_db: {settings.discord.feedback_db.name}\n",
                      encoding="utf-8")
    assert cli.main([args[0], "--config", str(config), *args[1:]]) == 0
    return capsys.readouterr().out


def button(message, vote: str) -> str:
    return next(v for v in vote_ids(message) if f":{vote}:" in v)


async def test_a_thumbs_down_asks_what_was_wrong_stores_it_and_okdbot_feedback_shows_it(
        world, settings, notes, capsys, quiet_loggers):
    answer = await world.alice.slash(world.channel, "ask", question="What does Tekton do?")
    answer_id = int(VOTE.fullmatch(button(answer.response, "down")).group(2))
    shown = await world.bob.click(answer.response, custom_id=button(answer.response, "down"))
    form = shown.modal
    assert form["title"] == "What was wrong with the answer?"
    (reason,) = [c["component"] for c in form["components"] if c["component"]["custom_id"] == "reason"]
    assert [o["value"] for o in reason["options"]] == ["wrong_passage", "outdated", "not_in_notes", "other"]
    (dismissed,) = FeedbackStore(settings.discord.feedback_db).votes(bad_only=True)
    assert (dismissed.answer_id, dismissed.reason) == (answer_id, "")  # the 👎 counts before the form is sent

    sent = await world.bob.submit_modal(shown, {"reason": ["outdated"], "comment": "v0.x 기준\x00 설명입니다\u200b"})
    assert sent.ephemeral and sent.response.content == "Thanks for the feedback!"
    (vote,) = FeedbackStore(settings.discord.feedback_db).votes(bad_only=True)
    assert (vote.answer_id, vote.reason, vote.comment) == (answer_id, "outdated", "v0.x 기준 설명입니다")

    listed = okdbot(settings, notes, capsys, "feedback", "--bad")
    assert "What does Tekton do?" in listed and "    wrong: outdated: v0.x 기준 설명입니다\n" in listed
    (line,) = okdbot(settings, notes, capsys, "feedback", "--json").splitlines()
    record = json.loads(line)
    assert {key: record[key] for key in ("answer_id", "vote", "reason", "comment")} == {
        "answer_id": answer_id, "vote": "down", "reason": "outdated", "comment": "v0.x 기준 설명입니다"}


async def test_a_thumbs_down_form_filled_in_across_a_restart_of_the_bot_still_counts(world, settings, retriever):
    """The form is open on the user's screen while the bot restarts (a deploy, a crash): what they
    send afterwards reaches a bot that never showed it, and must still be stored and thanked."""
    answer = await world.alice.slash(world.channel, "ask", question="What does Tekton do?")
    answer_id = int(VOTE.fullmatch(button(answer.response, "down")).group(2))
    shown = await world.bob.click(answer.response, custom_id=button(answer.response, "down"))
    assert shown.modal["title"] == "What was wrong with the answer?"
    await world.env.restart_bot(make_bot(settings, retriever))
    sent = await world.bob.submit_modal(shown, {"reason": ["wrong_passage"], "comment": "재시작 뒤에 보냄"})
    assert sent.ephemeral and sent.response.content == "Thanks for the feedback!"
    (vote,) = FeedbackStore(settings.discord.feedback_db).votes(bad_only=True)
    assert (vote.answer_id, vote.reason, vote.comment) == (answer_id, "wrong_passage", "재시작 뒤에 보냄")


async def test_the_thumbs_down_form_and_its_thanks_speak_the_language_of_the_question(world, settings):
    """Bob's Discord is in English, the question was Korean: the form was Korean, so is the thanks."""
    answer = await world.alice.slash(world.channel, "ask", question="Skopeo가 뭐야?")
    shown = await world.bob.click(answer.response, custom_id=button(answer.response, "down"))
    assert shown.modal["title"] == "답변에서 무엇이 잘못됐나요?"
    sent = await world.bob.submit_modal(shown, {"reason": ["outdated"]})
    assert sent.response.content == "피드백 감사합니다!"


@pytest.mark.parametrize("components", [
    [{"type": 18, "component": {"type": 3, "custom_id": "reason", "values": 5}}],
    [{"type": 18, "component": {"type": 3, "custom_id": "reason", "values": [["outdated"]]}}],
    [{"type": 18, "component": {"type": 3, "custom_id": ["reason"], "values": ["outdated"]}}],
    [{"type": 18, "component": {"type": 3, "custom_id": "reason", "values": ["not-a-reason"]}}],
    [{"type": 18, "component": {"type": 4, "custom_id": "comment", "value": {"x": 1}}}],
    7,
])
async def test_a_forged_thumbs_down_submission_gets_a_private_error_and_stores_nothing(world, settings, components):
    """A modal submission is whatever a client sends: shapes Discord never sends are refused
    with a private message instead of 'This interaction failed' and a traceback."""
    answer = await world.alice.slash(world.channel, "ask", question="What does Tekton do?")
    answer_id = int(VOTE.fullmatch(button(answer.response, "down")).group(2))
    data = {"custom_id": f"okdbot:why:en:{answer_id}", "components": components}
    record, payload = sim_interactions.base_payload(world.env.backend, type=5, channel_id=world.channel.id,
                                                    guild_id=world.guild.id, user_id=world.bob.id, data=data)
    world.env.backend.emit("INTERACTION_CREATE", payload)
    await world.env.settle()
    sent = simcord.InteractionResult(world.env, record)
    assert sent.ephemeral and sent.response.content == strings(False)["error"]
    assert FeedbackStore(settings.discord.feedback_db).votes(bad_only=True) == []


async def test_a_later_thumbs_up_clears_the_reason(world, settings):
    answer = await world.alice.slash(world.channel, "ask", question=UNANSWERABLE)
    shown = await world.alice.click(answer.response, custom_id=button(answer.response, "down"))
    await world.alice.submit_modal(shown, {"reason": ["not_in_notes"]})
    assert FeedbackStore(settings.discord.feedback_db).votes()[0].reason == "not_in_notes"
    await world.alice.click(answer.response, custom_id=button(answer.response, "up"))
    (vote,) = FeedbackStore(settings.discord.feedback_db).votes()
    assert (vote.vote, vote.reason, vote.comment) == ("up", "", "")


async def test_okdbot_gaps_lists_declined_and_thumbs_down_questions_by_their_nearest_section(
        world, settings, notes, capsys, quiet_loggers):
    declined = await world.alice.slash(world.channel, "ask", question=UNANSWERABLE)
    nearest = re.search(r"\]\((https://\S+)\)", declined.response.embeds[0].fields[0].value).group(1)
    bad = await world.bob.slash(world.channel, "ask", question="What does Tekton do?")
    shown = await world.bob.click(bad.response, custom_id=button(bad.response, "down"))
    await world.bob.submit_modal(shown, {"reason": ["wrong_passage"], "comment": "CI/CD 예시가 필요해요"})
    good = await world.alice.slash(world.channel, "ask", question="Skopeo가 뭐야?")
    await world.alice.click(good.response, custom_id=button(good.response, "up"))
    old = await world.bob.slash(world.channel, "ask", question="What is the capital of France?")
    with closing(sqlite3.connect(settings.discord.feedback_db)) as db, db:  # asked long ago
        db.execute("UPDATE answers SET time = '2020-01-01T00:00:00+00:00' WHERE question = 'What is the capital of France?'")
    assert not old.response.embeds[0].description  # declined too

    groups = [json.loads(line) for line in okdbot(settings, notes, capsys, "gaps", "--json").splitlines()]
    asked = {q["question"]: (g, q) for g in groups for q in g["questions"]}
    assert set(asked) == {UNANSWERABLE, "What does Tekton do?", "What is the capital of France?"}  # not the 👍'd one
    group, question = asked[UNANSWERABLE]
    assert question["url"] == nearest and question["declined"] and question["down"] == 0
    assert group["url"] == nearest and group["count"] == len(group["questions"]) >= 1
    group, question = asked["What does Tekton do?"]
    assert question["url"] == bad.response.embeds[0].url and group["section"] == bad.response.embeds[0].title
    assert (question["declined"], question["down"], question["reasons"]) == (False, 1, ["wrong_passage"])
    assert [g["newest"] for g in groups] == sorted((g["newest"] for g in groups), reverse=True)

    recent = okdbot(settings, notes, capsys, "gaps", "--since", "30")
    assert UNANSWERABLE in recent and "France" not in recent
    assert "👎  What does Tekton do?  [wrong passage; CI/CD 예시가 필요해요]" in recent
    assert re.search(rf"not in the notes  {re.escape(UNANSWERABLE)}\n", recent)


def test_a_database_of_the_previous_release_gains_reasons_threads_and_gaps(tmp_path):
    """Opening it adds the new columns; its answers and votes stay, and show in gaps."""
    path = tmp_path / "feedback.sqlite"
    cited = json.dumps([{"heading": "Day26 > Tekton", "file": "Day26.md", "start_line": 38, "end_line": 38,
                         "url": "https://e.example/Day26.md#L38-L38"}])
    with closing(sqlite3.connect(path)) as db, db:
        db.executescript("""
            CREATE TABLE answers (id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, question TEXT NOT NULL,
              answered INTEGER NOT NULL, generation TEXT NOT NULL, citations TEXT NOT NULL, asker TEXT NOT NULL,
              channel INTEGER, context TEXT NOT NULL DEFAULT '');
            CREATE TABLE votes (answer_id INTEGER NOT NULL REFERENCES answers(id), voter TEXT NOT NULL,
              vote TEXT NOT NULL CHECK (vote IN ('up', 'down')), time TEXT NOT NULL, PRIMARY KEY (answer_id, voter));
            """)
        db.execute("INSERT INTO answers VALUES (1, '2026-01-02T00:00:00+00:00', 'What does Tekton do?', 1, 'gen-old', ?, "
                   "'x', 7, '')", (cited,))
        db.execute("INSERT INTO votes VALUES (1, 'y', 'down', '2026-01-02T00:00:01+00:00')")
    store = FeedbackStore(path)
    (gap,) = store.gaps()
    assert (gap.heading, gap.url, gap.questions[0].down) == ("Day26 > Tekton", "https://e.example/Day26.md#L38-L38", 1)
    assert store.explain(1, 42, "outdated", "old")
    assert {(v.voter, v.reason) for v in store.votes(bad_only=True)} == {("y", ""), (user_hash(42), "outdated")}
    assert store.thread_conversation(99) is None


def test_gaps_since_must_be_a_number_of_days(workspace, monkeypatch, capsys, quiet_loggers):
    monkeypatch.chdir(workspace)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["gaps", "--since", "last week"])
    assert exit_.value.code == 2 and "is not a number of days above 0, e.g. --since 30" in capsys.readouterr().err


def test_gaps_since_more_days_than_the_calendar_holds_lists_everything(tmp_path, okdbot_cli):
    store = FeedbackStore(tmp_path / "feedback.sqlite")
    with closing(sqlite3.connect(store.path)) as db, db:
        db.execute("INSERT INTO answers (time, question, answered, generation, citations, asker) "
                   "VALUES ('2026-01-02T00:00:00+00:00', 'What does Tekton do?', 0, 'gen-old', '[]', 'x')")
    for days in ("1000000", "1e308"):
        proc = okdbot_cli("gaps", "--since", days, "--index", str(tmp_path / "index"), cwd=tmp_path)
        assert proc.returncode == 0 and "What does Tekton do?" in proc.stdout, (days, proc.stderr)


def test_a_feedback_database_that_is_not_okdbots_is_one_line(tmp_path, okdbot_cli):
    with closing(sqlite3.connect(tmp_path / "feedback.sqlite")) as db, db:
        db.execute("CREATE TABLE answers (x)")
    for command in ("feedback", "gaps"):
        proc = okdbot_cli(command, "--index", str(tmp_path / "index"), cwd=tmp_path)
        assert proc.returncode == 1 and "internal error" not in proc.stderr, proc.stderr
        assert proc.stderr.count("\n") == 1 and "feedback.sqlite" in proc.stderr and "answers" in proc.stderr


def test_a_folder_where_the_feedback_database_belongs_is_named(tmp_path, okdbot_cli):
    (tmp_path / "feedback.sqlite").mkdir()
    for command in ("feedback", "gaps"):
        proc = okdbot_cli(command, "--index", str(tmp_path / "index"), cwd=tmp_path)
        assert proc.returncode == 1 and "is a folder" in proc.stderr and "does not exist" not in proc.stderr, proc.stderr
