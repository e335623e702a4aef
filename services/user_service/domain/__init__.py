"""user-service rules as plain functions: no HTTP here."""
