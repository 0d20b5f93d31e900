"""What maintainers learn from the bot: what a 👎 said was wrong (`okdbot feedback`)
and which questions the notes do not answer well (`okdbot gaps`). Real discord.py
on simcord and the real feedback database, read back through the real CLI."""

from __future__ import annotations

import json

from okdbot import cli
from okdbot.feedback import FeedbackStore

from .test_discord import (UNANSWERABLE, VOTE, notes, retriever, settings, simcord_bot,  # noqa: F401 (fixtures)
                           vote_ids, world)


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


async def test_a_later_thumbs_up_clears_the_reason(world, settings):
    answer = await world.alice.slash(world.channel, "ask", question=UNANSWERABLE)
    shown = await world.alice.click(answer.response, custom_id=button(answer.response, "down"))
    await world.alice.submit_modal(shown, {"reason": ["not_in_notes"]})
    assert FeedbackStore(settings.discord.feedback_db).votes()[0].reason == "not_in_notes"
    await world.alice.click(answer.response, custom_id=button(answer.response, "up"))
    (vote,) = FeedbackStore(settings.discord.feedback_db).votes()
    assert (vote.vote, vote.reason, vote.comment) == ("up", "", "")
