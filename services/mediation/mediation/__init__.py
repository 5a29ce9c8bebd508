"""Mediation: the case lifecycle after assignment, and the owner of the directory."""
