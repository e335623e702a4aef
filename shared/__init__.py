"""The code every RepitBot service shares: one copy of each cross-cutting idea."""
