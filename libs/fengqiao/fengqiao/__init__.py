"""Fengqiao platform: what every service needs and nothing domain-specific."""
