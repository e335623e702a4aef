"""The envelope every event travels in (DESIGN.md §5)."""
# STUB: owned by the events helper — fill in.
