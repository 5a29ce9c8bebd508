"""Generate docs/asyncapi.yaml from the topic list and the pydantic payload contracts.

    .venv/bin/python scripts/asyncapi.py > docs/asyncapi.yaml

tests/test_docs.py fails when the committed file differs from what this prints."""

from __future__ import annotations

import sys

import yaml

from fengqiao.events import CONTRACTS, TOPIC_TYPES, CloudEvent, Topics

# Each topic's description and operation; the event types it carries come from TOPIC_TYPES, the list the
# consumers enforce (a type on any other topic is dead-lettered).
CHANNELS = {
    Topics.SUBMISSIONS: (
        "Public ingress: other bureau systems publish feedback here; every other event type is "
        "refused. Invalid records go to fengqiao.submissions.v1.dlq with the reason in headers.",
        "receive",
    ),
    Topics.CASE_EVENTS: (
        "Public lifecycle stream, keyed by tracking number (alerts by alert id). No personal "
        "data, and no words of the citizen: triage reasons carry rule ids and labels only.",
        "send",
    ),
    Topics.TRIAGE_REQUESTS: (
        "Internal, intake -> triage and mediation (which keeps the words sealed for the case detail): the text "
        "of a submission. Restrict to triage and mediation.",
        "send",
    ),
    Topics.CITIZEN_MESSAGES: (
        "Internal, intake -> notify: messages to citizens, with their contact and access code. Restrict to notify.",
        "send",
    ),
    Topics.DIRECTORY: (
        "Internal, mediation -> all (compacted, keyed by entity): stations, staff, rosters, "
        "token hashes. Only mediation may write here.",
        "send",
    ),
    Topics.SURVEYS: (
        "Internal, intake -> mediation and notify: return-visit survey answers (the reason is free text).",
        "send",
    ),
    Topics.CITIZEN_UPDATES: (
        "Internal, mediation -> intake: what the citizen is told (the result, a request for information); free text.",
        "send",
    ),
    Topics.STAFF_REMINDERS: (
        "Internal, mediation -> notify: a deadline is near; a step a member of staff took on a case, with "
        "its reason (free text); the citizen added to a case (no text).",
        "send",
    ),
    Topics.CASE_ACCESS: (
        "Internal, triage and mediation -> intake, mediation, triage and notify: who may not open a case (staff "
        "named in a complaint, the leader's exclusions), per station (triage checks the receiving station's "
        "staff again after a transfer, and a member of staff joining a station). Confidential: staff ids of a "
        "complaint against an officer. Restrict to the four services.",
        "send",
    ),
    Topics.CITIZEN_ADDITIONS: (
        "Internal, intake -> mediation: what the citizen added to an open case (answer to a request for "
        "information, e-mail reply, follow-up call); free text, may hold personal data. Restrict to mediation.",
        "send",
    ),
    Topics.CORRECTIONS: (
        "Internal, console -> triage: classifications corrected by staff; triage keeps them as "
        "labelled examples for `fengqiao triage train`.",
        "send",
    ),
}


def _message_name(event_type: str) -> str:
    return event_type.replace("fengqiao.", "").replace(".", "_")


def build() -> dict:
    schemas: dict = {}
    envelope = CloudEvent.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas["CloudEvent"] = envelope
    messages = {}
    for event_type, contract in CONTRACTS.items():
        schema = contract.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in schema.pop("$defs", {}).items():
            schemas[name] = sub
        schemas[contract.__name__] = schema
        messages[_message_name(event_type)] = {
            "name": event_type,
            "title": contract.__name__,
            "summary": (contract.__doc__ or "").strip().splitlines()[0] if contract.__doc__ else event_type,
            "contentType": "application/cloudevents+json",
            "headers": {"type": "object", "properties": {"content-type": {"const": "application/cloudevents+json"}}},
            "payload": {
                "allOf": [
                    {"$ref": "#/components/schemas/CloudEvent"},
                    {
                        "type": "object",
                        "properties": {
                            "type": {"const": event_type},
                            "data": {"$ref": f"#/components/schemas/{contract.__name__}"},
                        },
                    },
                ]
            },
        }
    channels, operations = {}, {}
    for topic, (description, action) in CHANNELS.items():
        types = sorted(TOPIC_TYPES[topic])
        key = topic.replace(".", "_").replace("-", "_")
        channels[key] = {
            "address": topic,
            "description": description,
            "messages": {_message_name(t): {"$ref": f"#/components/messages/{_message_name(t)}"} for t in types},
        }
        operations[f"{key}_{action}"] = {"action": action, "channel": {"$ref": f"#/channels/{key}"}}
        dlq_key = f"{key}_dlq"
        channels[dlq_key] = {
            "address": f"{topic}.dlq",
            "description": "Dead letters: the original key, value and headers, plus dlq.reason, "
            "dlq.error, dlq.original.topic, dlq.original.partition, "
            "dlq.original.offset, dlq.consumer.group.",
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Fengqiao (枫桥) event topics",
            "version": "1.0.0",
            "description": "Generated by scripts/asyncapi.py from libs/fengqiao/fengqiao/events.py. "
            "Every message is a CloudEvents 1.0 event in structured JSON mode.",
        },
        "defaultContentType": "application/cloudevents+json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def render() -> str:
    return yaml.safe_dump(build(), allow_unicode=True, sort_keys=False, width=110)


if __name__ == "__main__":
    sys.stdout.write(render())
