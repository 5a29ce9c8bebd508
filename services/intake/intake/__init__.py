"""Intake: every channel in, validated, stored, given a tracking number, emitted as `received`."""
