"""Test helpers every service's tests use (fleet, clients, tokens, event assertions, TCP proxy)."""
