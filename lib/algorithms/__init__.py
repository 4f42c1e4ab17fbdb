"""Algorithms that methods and metrics build on (no method names, no paper knowledge)."""
