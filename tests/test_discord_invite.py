"""What the bot may do on a server: `okdbot invite` asks for exactly what the bot
checks before it posts; where it lacks one of those, the asker is told privately
what is missing. Real discord.py on simcord, whose server computes permissions
from roles and overwrites (threads inherit their channel's) and refuses what they deny."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import discord
import pytest
import simcord

from okdbot import cli
from okdbot.discord_cog import AskCog
from okdbot.invite import LABELS, permissions_value

from .conftest import ROOT, settings_for, write_config
from .test_discord import SKOPEO_KO, World, bot_settings, make_bot, notes, retriever, settings  # noqa: F401 (fixtures)

APP_ID = 123456789012345678
TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GhIjKl.abcdefghijklmnopqrstuvwxyz0123456789AB"  # starts with APP_ID in base64


def invite(folder, monkeypatch, capsys, *args: str) -> tuple[dict, discord.Permissions]:
    """`okdbot invite ARGS` run in `folder`: the URL's query and its permissions."""
    monkeypatch.chdir(folder)
    assert cli.main(["invite", *args]) == 0
    query = parse_qs(urlparse(capsys.readouterr().out.strip()).query)
    return query, discord.Permissions(int(query["permissions"][0]))


def test_okdbot_invite_asks_for_the_scopes_and_the_permissions_the_bot_checks(workspace, monkeypatch, capsys,
                                                                               tmp_path, quiet_loggers):
    monkeypatch.setenv("DISCORD_TOKEN", TOKEN)
    query, permissions = invite(workspace, monkeypatch, capsys)
    assert query["client_id"] == [str(APP_ID)] and query["scope"] == ["bot applications.commands"]
    cog = AskCog(make_bot(bot_settings(settings_for(workspace), tmp_path), None))
    assert permissions == cog.required_permissions
    assert permissions == discord.Permissions(view_channel=True, send_messages=True, send_messages_in_threads=True,
                                              embed_links=True, read_message_history=True)  # no Add Reactions
    assert TOKEN not in capsys.readouterr().err

    write_config(workspace, extra="discord:\n  threads: true\n  guild_id: 42\n")
    query, permissions = invite(workspace, monkeypatch, capsys, "--client-id", "7")
    threaded = AskCog(make_bot(bot_settings(settings_for(workspace), tmp_path), None))
    assert permissions == threaded.required_permissions and permissions.create_public_threads
    assert query["client_id"] == ["7"] and query["guild_id"] == ["42"]


def test_without_an_application_id_okdbot_invite_says_where_to_find_it(workspace, monkeypatch, capsys, quiet_loggers):
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    monkeypatch.chdir(workspace)
    assert cli.main(["invite"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "--client-id" in err and "Application ID" in err


def test_the_readme_invites_with_the_computed_permissions():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"&permissions={permissions_value(False)}" in readme and "84032" not in readme
    assert f"permissions={permissions_value(True)}" in readme  # with discord.threads


def only(allowed: discord.Permissions) -> discord.PermissionOverwrite:
    """A member overwrite that leaves the bot exactly `allowed` in a channel."""
    return discord.PermissionOverwrite.from_pair(allowed, discord.Permissions(discord.Permissions.all().value
                                                                                & ~allowed.value))


def without(permissions: discord.Permissions, name: str) -> discord.Permissions:
    less = discord.Permissions(permissions.value)
    setattr(less, name, False)
    return less


def user_thread(world: World, parent, owner, name: str):
    """A thread a member opened (simcord's backend call: members have no public verb for it)."""
    thread = world.env.backend.create_thread(parent.id, name, owner.id)
    return next(t for t in parent.threads if t.id == thread.id)


async def test_with_the_invites_permissions_the_bot_answers_and_without_one_it_tells_the_asker(
        settings, retriever, workspace, monkeypatch, capsys, quiet_loggers):
    _, invited = invite(workspace, monkeypatch, capsys, "--client-id", str(APP_ID))
    settings = bot_settings(settings, settings.discord.feedback_db.parent, cooldown_rate=0)  # six questions in a row
    async with simcord.run(make_bot(settings, retriever)) as env:
        w = World(env)
        mention = env.bot.user.mention
        exact = w.guild.create_text_channel("exact", overwrites={env.bot.user: only(invited)})
        await w.alice.send(exact, f"{mention} {SKOPEO_KO}")
        assert exact.last_message.author.id == env.bot.user.id and exact.last_message.embeds
        thread = user_thread(w, exact, w.bob, "Skopeo 질문")
        await w.bob.send(thread, f"{mention} What is Skopeo?")
        assert thread.last_message.author.id == env.bot.user.id and thread.last_message.embeds

        for name in ("send_messages", "embed_links", "read_message_history", "send_messages_in_threads"):
            channel = w.guild.create_text_channel(f"no-{name}", overwrites={env.bot.user: only(without(invited, name))})
            where = user_thread(w, channel, w.alice, "질문") if name == "send_messages_in_threads" else channel
            await w.alice.send(where, f"{mention} {SKOPEO_KO}")
            assert [m.author.id for m in where.history()] == [w.alice.id], name  # no answer it cannot post whole
            hint = w.alice.user.dm_channel.last_message
            assert hint.author.id == env.bot.user.id and where.mention in hint.content, name
            assert LABELS[name] in hint.content.split("그곳에서 ")[1].split(" 권한이 없습니다")[0], hint.content
            assert "/ask" in hint.content
        posts = [r.json for r in env.http_requests if r.method == "POST" and r.path.endswith("/messages")]
        assert len(posts) == 6 and all(p["allowed_mentions"]["parse"] == [] for p in posts)  # 2 answers, 4 hints


@pytest.mark.parametrize("args", [["--client-id", "-1"], ["--client-id", "0"], ["--client-id", "7", "--guild", "-5"],
                                  ["--client-id", str(2**64)]])
def test_an_id_that_no_discord_object_has_is_refused(workspace, args, okdbot_cli):
    proc = okdbot_cli("invite", *args, cwd=workspace, env={"DISCORD_TOKEN": ""})
    assert proc.returncode == 2 and proc.stdout == "" and "not a Discord id" in proc.stderr, proc


def test_a_token_that_names_no_application_is_said_to_be_so_and_never_shown(workspace, okdbot_cli):
    garbage = "not-a-bot-token-at-all"
    proc = okdbot_cli("invite", cwd=workspace, env={"DISCORD_TOKEN": garbage})
    assert proc.returncode == 2 and proc.stdout == "" and proc.stderr.count("\n") == 1, proc
    assert "DISCORD_TOKEN is set but" in proc.stderr and "--client-id" in proc.stderr and garbage not in proc.stderr
