"""The pure Discord layout (answer.discord_reply): Discord's limits hold for any
answer, long quotes are cut at line boundaries (never mid-word, never inside a
code fence) and end with a link to the rest."""

from __future__ import annotations

import re

import pytest

from okdbot.answer import ELLIPSIS, PASSAGE_CHARS, cut_words, discord_reply, fit_lines, quote_question
from okdbot.question import check_question
from okdbot.errors import BadQuestion
from okdbot.retrieve import Line, Passage, Result, Suggestion

from .discord_limits import DESCRIPTION_MAX, FIELD_VALUE_MAX, assert_within_limits, discord_len, reply_payload

URL = "https://github.com/o/r/blob/main/docs/Day99.md?plain=1#L{start}-L{end}"


def passage(lines: list[str], rank: int = 1, heading: str = "Day99 > 업그레이드 > 체크리스트", start: int = 10) -> Passage:
    end = start + len(lines) - 1
    return Passage(rank=rank, score=0.9, source="notes", file="Day99.md", heading=heading, start_line=start,
                   end_line=end, url=URL.format(start=start, end=end),
                   lines=[Line(start + i, text, True) for i, text in enumerate(lines)])


def answered(*passages: Passage, question: str = "What is the upgrade checklist?") -> Result:
    return Result(question, True, list(passages), korean=False, generation="gen-1")


def long_lines(n: int, width: int = 120, word: str = "upgrade") -> list[str]:
    """n lines of whole words, each about `width` characters."""
    out = []
    for i in range(n):
        words = [f"step{i}"]
        while len(" ".join(words)) < width:
            words.append(word)
        out.append("- " + " ".join(words))
    return out


def shown_lines(description: str) -> list[str]:
    """The description's lines without the closing "… [more](url)" line."""
    lines = description.split("\n")
    return lines[:-1] if lines[-1].startswith(f"{ELLIPSIS} [") else lines


def test_a_4000_character_answer_is_trimmed_at_a_line_boundary_with_a_link_to_the_rest():
    source = long_lines(33)
    assert len("\n".join(source)) >= 4000
    reply = discord_reply(answered(passage(source)))
    assert_within_limits(reply_payload(reply))
    (embed,) = reply.embeds
    assert discord_len(embed.description) <= PASSAGE_CHARS
    assert embed.description.endswith(f"{ELLIPSIS} [More in the notes]({URL.format(start=10, end=42)})")
    kept = shown_lines(embed.description)
    assert kept == source[:len(kept)] and 5 < len(kept) < len(source)  # whole lines from the top, none cut


def test_a_4000_character_answer_fits_whole_when_discord_allows_it():
    source = long_lines(35, width=110)
    assert 4000 <= len("\n".join(source)) <= DESCRIPTION_MAX
    reply = discord_reply(answered(passage(source)), passage_chars=DESCRIPTION_MAX)
    assert reply.embeds[0].description == "\n".join(source)
    assert_within_limits(reply_payload(reply))


def test_never_more_than_discord_allows_however_long_and_many_the_passages():
    heading = " > ".join(f"아주 긴 제목 {i} " + "x" * 60 for i in range(8))
    passages = [passage(long_lines(40, width=400), rank=i + 1, heading=heading, start=100 * i + 1) for i in range(14)]
    for chars in (PASSAGE_CHARS, DESCRIPTION_MAX, 10_000):
        reply = discord_reply(answered(*passages), passage_chars=chars)
        assert_within_limits(reply_payload(reply))
        assert 1 <= len(reply.embeds) <= 10
        assert all(e.title.endswith("x" * 60) for e in reply.embeds)  # the most specific heading is kept


def test_the_cut_never_lands_inside_a_code_fence():
    fence = ["```sh", *[f"oc adm upgrade --to-latest=true   # run {i} of the upgrade" for i in range(40)], "```"]
    source = ["Before the upgrade:", *long_lines(3), *fence, *long_lines(5)]
    description = fit_lines(source, 800, "… [more](u)")
    assert discord_len(description) <= 800
    assert "```" not in description  # the fence did not fit: cut before it, not in it
    assert shown_lines(description) == source[:4]


def test_a_fence_at_the_top_that_does_not_fit_is_closed():
    fence = ["```yaml", *[f"key{i}: value number {i}" for i in range(200)], "```"]
    description = fit_lines(fence, 500, "… [more](u)")
    assert discord_len(description) <= 500
    assert description.count("```") == 2 and description.split("\n")[-2] == "```"


def test_an_unbalanced_fence_from_trimmed_lines_is_closed():
    assert fit_lines(["```sh", "oc get pods"], 100, "more") == "```sh\noc get pods\n```"


def test_an_over_long_first_line_is_cut_between_words():
    line = " ".join(f"word{i}" for i in range(2000))
    description = fit_lines([line], 1000, "… [more](u)")
    body = description.split("\n")[0]
    assert discord_len(description) <= 1000
    assert line.startswith(body) and line[len(body)] == " "  # ends at a word boundary


def test_cut_words_keeps_korean_words_whole():
    text = "컨테이너 이미지를 저장소 간에 복사하는 도구"
    assert cut_words(text, 12) == "컨테이너 이미지를"
    assert cut_words(text, 100) == text


def test_not_found_lists_suggestions_within_the_field_limit():
    suggestions = [Suggestion("Day26 > 레드햇 OpenShift > " + "섹션 " * 80, "https://e.com/" + "p" * 200 + f"#L{i}")
                   for i in range(10)]
    result = Result("Azure 가상 네트워크 피어링은?", False, [], suggestions, korean=True)
    reply = discord_reply(result)
    assert_within_limits(reply_payload(reply))
    (embed,) = reply.embeds
    assert embed.title == "노트에서 이 내용을 찾지 못했습니다."
    (name, value), = embed.fields
    assert name == "가까운 섹션:" and 1 <= value.count("\n- [") + 1 <= 10
    assert discord_len(value) <= FIELD_VALUE_MAX


def test_ui_strings_follow_the_language_of_the_question():
    p = passage(["- Skopeo : 컨테이너 이미지를 복사하는 도구"])
    english = discord_reply(answered(p))
    korean = discord_reply(Result("Skopeo가 뭐야?", True, [p], korean=True))
    assert english.embeds[0].footer == "Source: Day99.md · L10-L10"
    assert korean.embeds[0].footer == "출처: Day99.md · L10-L10"


@pytest.mark.parametrize("question", ["see https://example.com/x?y=1 please", "x" * 5000 + " @everyone"])
def test_the_echoed_question_fits_and_shows_no_link_preview(question):
    content = quote_question(question)
    assert content.startswith("> ") and discord_len(content) <= 2000
    assert "https://" not in content or "<https://example.com/x?y=1>" in content


@pytest.mark.parametrize("question, echoed", [
    ("[free nitro](https://evil.example/gift) 받기", "> \\[free nitro\\](<https://evil.example/gift>) 받기"),
    ("[x](<https://evil.example>)", "> \\[x\\](<<https://evil.example>>)"),
    ("(see https://docs.okd.io/latest)", "> (see <https://docs.okd.io/latest>)"),
    ("see https://en.wikipedia.org/wiki/Kubernetes_(software).", "> see <https://en.wikipedia.org/wiki/Kubernetes_(software)>."),
    ("# Big heading?", "> \\# Big heading?"),
    ("C:\\temp\\[x](https://a.example)", "> C:\\\\temp\\\\\\[x\\](<https://a.example>)"),
])
def test_the_echo_shows_the_question_as_typed_without_masked_links(question, echoed):
    assert quote_question(question) == echoed


def test_an_echo_of_many_brackets_still_fits():
    content = quote_question("[a](https://e.example/x) " * 200)
    assert discord_len(content) <= 1000 and content.endswith(">)")


def test_links_from_notes_show_their_destination_but_code_is_left_as_written():
    lines = ["- 문서: [OKD 업그레이드](https://docs.okd.io/latest/updating/ \"title\") 참고",
             "- 그림 ![diagram](https://e.example/a.png) and `[not](https://a.link)` in code",
             "```md", "[inside](https://fenced.example)", "```", "[after](https://e.example/(x))"]
    (embed,) = discord_reply(answered(passage(lines))).embeds
    assert embed.description.split("\n") == [
        "- 문서: \\[OKD 업그레이드\\](<https://docs.okd.io/latest/updating/>) 참고",
        "- 그림 !\\[diagram\\](<https://e.example/a.png>) and `[not](https://a.link)` in code",
        "```md", "[inside](https://fenced.example)", "```", "\\[after\\](<https://e.example/(x)>)"]


@pytest.mark.parametrize("raw, clean", [
    ("Sko\u200bpeo가 뭐야?", "Skopeo가 뭐야?"),
    ("\ufeffPod\u2060man\x00이\u200d 뭐야?\u202e", "Podman이 뭐야?"),
    ("Tekton\tis\r\nwhat?\x07", "Tekton is what?"),
    ("\u1109\u1173\u110f\u1169\u1111\u1175\u110b\u1169", "스코피오"),  # NFD Hangul (macOS input) → NFC
    ("\u3164 Skopeo", "Skopeo"),  # a Hangul filler looks like nothing
])
def test_questions_are_searched_as_people_see_them(raw, clean):
    assert check_question(raw) == clean


def test_a_question_of_invisible_characters_is_empty():
    with pytest.raises(BadQuestion, match="empty"):
        check_question("\u200b\u200c\ufeff \x00")


LONG_PATH = "2024_메타넷_인턴십/3주차_쿠버네티스_실습/오픈시프트_네트워크와_서비스_메시_그리고_인그레스_정리노트.md"


def _long_path_passage(rank: int) -> Passage:
    from urllib.parse import quote

    start = rank * 20
    lines = [f"- 서비스 메시 설정 단계 {i}: " + "사이드카 프록시를 주입하고 트래픽 정책을 확인한다 " * 3 for i in range(12)]
    return Passage(rank=rank, score=0.9, source="notes", file=LONG_PATH, heading=f"Day26 > 네트워크 > 서비스 메시 {rank}",
                   start_line=start, end_line=start + 11,
                   url=f"https://github.com/o/r/blob/main/docs/{quote(LONG_PATH, safe='/')}?plain=1#L{start}-L{start + 11}",
                   lines=[Line(start + i, t, True) for i, t in enumerate(lines)])


@pytest.mark.parametrize("k", [1, 5, 10])
def test_many_passages_of_a_note_with_a_long_korean_path_are_laid_out_and_fit(k):
    """A percent-encoded Hangul path makes the "more" link longer than a passage's share
    (retrieval.k: 10): the layout must still finish (it runs on the bot's event loop),
    fit Discord's limits and keep every link whole."""
    import threading

    result = Result("서비스 메시 설정은?", True, [_long_path_passage(r) for r in range(1, k + 1)], korean=True)
    done: list = []
    worker = threading.Thread(target=lambda: done.append(discord_reply(result)), daemon=True)
    worker.start()
    worker.join(20)
    assert done, "discord_reply never returned"
    payload = reply_payload(done[0])
    assert_within_limits(payload)
    for embed in payload["embeds"]:
        for link in re.findall(r"\]\((https?://[^)]*)\)", embed.get("description", "")):
            assert link in {p.url for p in result.passages}


def test_cut_words_with_no_room_gives_nothing():
    assert cut_words("업그레이드 체크리스트", 0) == "" and cut_words("upgrade checklist", -5) == ""


def test_an_answer_quoting_a_note_edited_since_indexing_says_its_lines_may_have_moved():
    result = answered(passage(["- Skopeo : 복사"]), question="Skopeo가 뭐야?")
    result.korean, result.changed = True, ["Day99.md"]
    payload = reply_payload(discord_reply(result))
    assert_within_limits(payload)
    assert "Day99.md" in payload["content"] and "바뀌었습니다" in payload["content"]
    result.changed = []
    assert "바뀌었" not in reply_payload(discord_reply(result)).get("content", "")


def test_a_quote_ending_in_a_backslash_is_laid_out():
    """A Windows path or a Markdown hard break at the end of a quote made the layout loop
    for ever (on the bot's event loop)."""
    import threading

    from okdbot.answer import show_link_targets

    done: list = []
    lines = ["The client is installed into C:\\Program Files\\OKD\\"]
    worker = threading.Thread(target=lambda: done.append((show_link_targets(lines),
                                                          discord_reply(answered(passage(lines))))), daemon=True)
    worker.start()
    worker.join(10)
    assert done and done[0][0] == lines
