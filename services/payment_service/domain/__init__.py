"""payment-service's rules, as plain functions over a session (no HTTP)."""
