"""The case page's action forms read into typed commands: what was typed is kept, and a refused
field is named in Chinese."""

from __future__ import annotations

from starlette.datastructures import FormData

from mediation.commands import Note, ResumeClock, ReviewReturn, Visit
from mediation.console_case_view import read_command, reason_words


def test_a_form_becomes_its_command_and_extra_fields_are_ignored():
    form = FormData([("text", " 已联系物业 "), ("csrf_token", "x"), ("version", "7")])
    command, typed, error = read_command(Note, form)
    assert error is None and command == Note(text=" 已联系物业 ")
    assert typed == {"text": " 已联系物业 "}  # the CSRF token and the version are not the command's
    command, _, _ = read_command(ResumeClock, FormData([("reason", "")]))
    assert command == ResumeClock()  # an empty optional field is left out
    command, _, _ = read_command(ReviewReturn, FormData([("approve", "true"), ("assignee_id", "KZ01-P2")]))
    assert command == ReviewReturn(approve=True, assignee_id="KZ01-P2")


def test_a_refused_field_is_named_and_what_was_typed_is_kept():
    command, typed, error = read_command(Visit, FormData([("result", "great"), ("reason", "电话回访")]))
    assert command is None and error == "“回访结果”填写有误，请重新选择或填写。"
    assert typed == {"result": "great", "reason": "电话回访"}
    _, _, error = read_command(Note, FormData([("text", "")]))
    assert error == "请填写“内容”。"
    _, _, error = read_command(Note, FormData([("text", "长" * 2001)]))
    assert error == "“内容”过长，请精简后再提交。"


def test_triage_reasons_read_in_words():
    assert reason_words("rule:urgency=urgent:self_harm#1") == "规则 urgency=urgent:self_harm#1"
    assert reason_words("model:category=fraud:p=0.62") == "模型 category=fraud:p=0.62"
