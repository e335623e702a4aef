"""analytics-service rules as plain functions: events to facts, facts to reports."""
