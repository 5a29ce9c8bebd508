"""Triage: classify each item, then assign it to an officer under the station's rules."""
