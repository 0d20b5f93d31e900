"""What okdbot says around the quotes, in English and Korean: the answer's own words
(not found, nearest sections, cooldown, errors), chosen by the question's language."""

from __future__ import annotations

STRINGS = {
    "en": {
        "not_found": "I couldn't find this in the notes.",
        "suggest": "Nearest sections:",
        "source": "Source",
        "more": "More in the notes",
        "cooldown": "Please wait {seconds:.0f}s before asking again.",
        "error": "Something went wrong while answering. The maintainers have been told.",
        "empty": "Ask a question after the mention, e.g. “What is Skopeo?”",
        "empty_ask": "Ask a question, e.g. /ask question: What is Skopeo?",
        "thanks": "Thanks for the feedback!",
        "too_long": "That question is too long; ask in at most {limit} characters.",
        "not_here": "I answer questions only in {channels}.",
        "no_content": "I can't read replies that don't mention me. Reply again with the mention on, or ask with /ask.",
        "command": "Ask the OKD notes a question",
        "command_question": "Your question, in Korean or English",
        "follow_up": "Read as a follow-up to:",
        "changed": "⚠ {files} changed since the notes were indexed: the linked lines may have moved.",
        "why_title": "What was wrong with the answer?",
        "why_reason": "What was wrong",
        "why_comment": "Anything to add? (optional)",
        "reason_wrong_passage": "It quotes the wrong passage",
        "reason_outdated": "It is outdated",
        "reason_not_in_notes": "The notes do not cover this",
        "reason_other": "Something else",
        "no_permission": "I can't answer in {channel}: I lack {permissions} there. Ask a server admin to grant "
                         "that (`okdbot invite` prints an invite with everything I need), or ask with /ask.",
    },
    "ko": {
        "not_found": "노트에서 이 내용을 찾지 못했습니다.",
        "suggest": "가까운 섹션:",
        "source": "출처",
        "more": "노트에서 더 보기",
        "cooldown": "{seconds:.0f}초 후에 다시 질문해 주세요.",
        "error": "답변 중 문제가 생겼습니다. 관리자에게 알렸습니다.",
        "empty": "멘션 뒤에 질문을 적어 주세요. 예: “Skopeo가 뭐야?”",
        "empty_ask": "질문을 적어 주세요. 예: /ask question: Skopeo가 뭐야?",
        "thanks": "피드백 감사합니다!",
        "too_long": "질문이 너무 깁니다. {limit}자 이내로 질문해 주세요.",
        "not_here": "{channels} 채널에서만 질문에 답합니다.",
        "no_content": "멘션이 없는 답장은 읽을 수 없습니다. 멘션을 켜고 다시 답장하거나 /ask 로 질문해 주세요.",
        "command": "OKD 노트에 질문하기",
        "command_question": "질문 내용 (한국어 또는 영어)",
        "follow_up": "앞선 질문에 이어서 찾았습니다:",
        "changed": "⚠ {files} 파일이 색인 후 바뀌었습니다: 링크된 줄 위치가 달라졌을 수 있습니다.",
        "why_title": "답변에서 무엇이 잘못됐나요?",
        "why_reason": "잘못된 점",
        "why_comment": "덧붙일 말 (선택)",
        "reason_wrong_passage": "엉뚱한 부분을 인용했어요",
        "reason_outdated": "내용이 오래됐어요",
        "reason_not_in_notes": "노트에 없는 내용이에요",
        "reason_other": "기타",
        "no_permission": "{channel}에서는 답할 수 없습니다: 그곳에서 {permissions} 권한이 없습니다. 서버 관리자에게 "
                         "권한을 요청하거나(`okdbot invite`가 필요한 권한을 모두 담은 초대 링크를 보여 줍니다) "
                         "/ask 로 질문해 주세요.",
    },
}


def strings(korean: bool) -> dict[str, str]:
    return STRINGS["ko" if korean else "en"]
