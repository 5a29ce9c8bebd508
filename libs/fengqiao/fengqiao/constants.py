"""Constants every service shares, each in one place: the stations' time zone and the CloudEvents
`source` of each producer (part of the event contract, like the event types: receivers and the
inbox's once-only key depend on them, so they never change)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

# Every station works on Beijing time: deadlines, duty hours, quiet hours and dates shown to people.
STATION_TZ = ZoneInfo("Asia/Shanghai")

SOURCE_ROOT = "/fengqiao"
INTAKE_SOURCE = f"{SOURCE_ROOT}/intake"
INTAKE_SMTP_SOURCE = f"{INTAKE_SOURCE}/smtp"  # mail received by intake's own SMTP listener
TRIAGE_SOURCE = f"{SOURCE_ROOT}/triage"
MEDIATION_SOURCE = f"{SOURCE_ROOT}/mediation"
MEDIATION_CLOCK_SOURCE = f"{MEDIATION_SOURCE}/clock"  # reminders and deadlines raised by mediation's timers
NOTIFY_SOURCE = f"{SOURCE_ROOT}/notify"
