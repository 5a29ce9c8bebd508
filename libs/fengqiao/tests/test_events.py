"""Unit tests of the envelope and the payload contracts."""

from __future__ import annotations

import json

import pytest

from fengqiao.events import (
    CONTRACTS,
    TOPIC_TYPES,
    CaseReceived,
    EventTypes,
    FeedbackSubmitted,
    PoisonMessage,
    Topics,
    bind_handlers,
    check_topic,
    new_event,
    parse_event,
)


def ingress(**data_overrides) -> dict:
    data = {"station": "KZ01", "channel": "transfer_110", "content": "有人在小区门口打架"} | data_overrides
    return {
        "specversion": "1.0",
        "id": "110-20261128-0001",
        "source": "/bureau/110-dispatch",
        "type": EventTypes.FEEDBACK_SUBMITTED,
        "time": "2026-11-28T08:00:00+08:00",
        "datacontenttype": "application/json",
        "data": data,
    }


def test_a_valid_ingress_event_parses_with_its_typed_payload():
    event = parse_event(json.dumps(ingress()).encode())
    payload = event.payload(FeedbackSubmitted)
    assert isinstance(payload, FeedbackSubmitted)
    assert payload.channel == "transfer_110" and payload.reporter.anonymous is False


def test_round_trip_keeps_extension_attributes():
    event = new_event(
        EventTypes.CASE_RECEIVED,
        CaseReceived(tracking_no="FQ23456789", station="KZ01", channel="web", submitted_at="2026-11-28T00:00:00Z"),
        source="/fengqiao/intake",
        subject="FQ23456789",
        stationid="KZ01",
    )
    again = parse_event(event.to_json())
    assert again == event
    assert again.stationid == "KZ01" and again.correlationid == event.id
    assert json.loads(event.to_json())["specversion"] == "1.0"


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b"{oops", "bad_json"),
        (b"[1, 2]", "bad_envelope"),
        (None, "empty_value"),
        ("\u00ff".encode("latin-1"), "bad_json"),
    ],
)
def test_undecodable_records_are_poison(raw, reason):
    with pytest.raises(PoisonMessage) as info:
        parse_event(raw)
    assert info.value.reason == reason


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda e: e.pop("source"), "source"),
        (lambda e: e.update(specversion="0.3"), "specversion"),
        (lambda e: e.update(time="2026-11-28T08:00:00"), "time"),  # no offset: not RFC 3339
        (lambda e: e.update(time="yesterday"), "time"),
    ],
)
def test_envelope_violations_name_the_attribute(mutate, field):
    doc = ingress()
    mutate(doc)
    with pytest.raises(PoisonMessage) as info:
        parse_event(json.dumps(doc).encode())
    assert info.value.reason == "bad_envelope" and field in info.value.detail


@pytest.mark.parametrize(
    "data, field",
    [
        ({"content": ""}, "content"),
        ({"content": "   "}, "content"),
        ({"content": "字" * 5001}, "content"),
        ({"channel": "fax"}, "channel"),
        ({"station": ""}, "station"),
        ({"reporter": {"phone": "1" * 41}}, "reporter.phone"),
        ({"location": {"lat": 123.0}}, "location.lat"),
    ],
)
def test_payload_violations_name_the_field(data, field):
    event = parse_event(json.dumps(ingress(**data)).encode())
    with pytest.raises(PoisonMessage) as info:
        event.payload(FeedbackSubmitted)
    assert info.value.reason == "schema_violation" and info.value.detail.startswith(field)


def test_fields_added_by_a_newer_producer_are_ignored():
    event = parse_event(json.dumps(ingress(priority="high", reporter={"wechat": "x", "anonymous": True})).encode())
    payload = event.payload(FeedbackSubmitted)
    assert payload.reporter.anonymous is True and not hasattr(payload, "priority")


def test_asking_for_another_model_than_the_contract_is_a_programming_error():
    event = parse_event(json.dumps(ingress()).encode())
    with pytest.raises(TypeError, match="FeedbackSubmitted, not CaseReceived"):
        event.payload(CaseReceived)


def test_a_payload_that_breaks_its_contract_stays_poison_for_the_right_model():
    event = parse_event(json.dumps(ingress(content="")).encode())
    with pytest.raises(PoisonMessage, match="schema_violation"):
        event.payload(FeedbackSubmitted)
    with pytest.raises(PoisonMessage, match="schema_violation"):
        event.validated_data()


def test_unknown_event_type_is_poison_when_its_payload_is_needed():
    event = parse_event(json.dumps(ingress() | {"type": "com.example.unknown"}).encode())
    with pytest.raises(PoisonMessage) as info:
        event.payload(FeedbackSubmitted)
    assert info.value.reason == "unknown_type"


def test_every_event_type_has_a_contract():
    types = {v for k, v in vars(EventTypes).items() if not k.startswith("_")}
    assert types == set(CONTRACTS)


def test_public_case_events_carry_no_personal_fields():
    personal = {"name", "phone", "email", "reporter", "content", "address"}
    for type_, contract in CONTRACTS.items():
        if type_.startswith("fengqiao.case."):
            assert personal.isdisjoint(contract.model_fields), type_


def test_optional_fields_left_empty_survive_a_round_trip():
    """new_event drops None values from `data`; every contract must accept that."""
    from fengqiao.events import CaseAssigned, StaffUpserted, TokenIssued

    samples = [
        StaffUpserted(staff_id="BUREAU-01", station=None, name="x", role="bureau"),
        TokenIssued(token_id="t", token_hash="h", staff_id=None, station=None, role="integration"),
        CaseAssigned(
            tracking_no="FQ23456789",
            station="KZ01",
            assignee_id=None,
            assignee_role=None,
            team=None,
            type="help",
            category="other",
            urgency="normal",
            needs_mediation=False,
            reason="rule:no_staff",
            flagged=True,
            submitted_at="2026-11-28T00:00:00Z",
        ),
    ]
    type_of = {contract: type_ for type_, contract in CONTRACTS.items()}
    for payload in samples:
        event = new_event(type_of[type(payload)], payload, source="/test")
        assert parse_event(event.to_json()).payload(type(payload)) == payload


@pytest.mark.parametrize(
    "event_type",
    [
        EventTypes.TOKEN_ISSUED,
        EventTypes.STAFF_UPSERTED,
        EventTypes.CITIZEN_UPDATE,
        EventTypes.CITIZEN_MESSAGE_REQUESTED,
        EventTypes.CASE_RESOLVED,
        EventTypes.SURVEY_ANSWERED,
        "fengqiao.something.new",
        "x",
    ],
)
def test_the_ingress_topic_refuses_every_type_but_submitted_feedback(event_type):
    with pytest.raises(PoisonMessage) as refused:
        check_topic(Topics.SUBMISSIONS, event_type)
    assert refused.value.reason == "type_not_allowed_on_topic"
    check_topic(Topics.SUBMISSIONS, EventTypes.FEEDBACK_SUBMITTED)


def test_internal_topics_refuse_types_of_other_topics_and_tolerate_unknown_ones():
    with pytest.raises(PoisonMessage):
        check_topic(Topics.CASE_EVENTS, EventTypes.TOKEN_ISSUED)  # a directory event on the public stream
    with pytest.raises(PoisonMessage):
        check_topic(Topics.DIRECTORY, EventTypes.FEEDBACK_SUBMITTED)
    check_topic(Topics.DIRECTORY, EventTypes.TOKEN_ISSUED)
    check_topic(Topics.CASE_EVENTS, "fengqiao.case.some_future_step")  # a newer producer: ignored, not poison


def test_every_contract_travels_on_exactly_one_topic():
    for event_type in CONTRACTS:
        assert sum(event_type in types for types in TOPIC_TYPES.values()) == 1, event_type


def test_handlers_are_bound_to_the_topic_their_type_travels_on():
    def handler(event, conn, outbox):
        return None

    bound = bind_handlers(
        [Topics.SUBMISSIONS, Topics.DIRECTORY],
        {EventTypes.FEEDBACK_SUBMITTED: handler, EventTypes.TOKEN_ISSUED: handler},
    )
    assert bound == {
        Topics.SUBMISSIONS: {EventTypes.FEEDBACK_SUBMITTED: handler},
        Topics.DIRECTORY: {EventTypes.TOKEN_ISSUED: handler},
    }
    with pytest.raises(ValueError, match="token_issued"):
        bind_handlers([Topics.SUBMISSIONS], {EventTypes.TOKEN_ISSUED: handler})


def test_a_nul_anywhere_in_an_event_is_poison_at_the_door():
    with pytest.raises(PoisonMessage) as envelope:
        parse_event(json.dumps(ingress() | {"id": "evt\u0000"}).encode())
    assert envelope.value.reason == "bad_envelope"
    for data in (
        {"content": "有人\u0000打架"},
        {"title": "t\u0000"},
        {"reporter": {"name": "张\u0000三"}},
        {"location": {"address": "矿区\u0000路"}},
        {"external_ref": "\u0000"},
    ):
        with pytest.raises(PoisonMessage) as payload:
            parse_event(json.dumps(ingress(**data)).encode()).payload(FeedbackSubmitted)
        assert payload.value.reason == "schema_violation"
