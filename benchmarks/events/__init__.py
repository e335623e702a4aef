"""The event-path benchmark: ``lesson.completed`` committed → XP visible at student-service.

``make bench BENCH=events`` (``python -m benchmarks.events``) starts its own fleet
(user-, lesson-, payment- and student-service; see ``benchmarks/common/fleet.py``),
seeds tutors, students and weekly series of past lessons through the services' APIs,
and measures, in one run:

1. latency at a paced rate (100 completions/s): each completion is a real
   ``POST /api/v1/lessons/{id}/complete``; *committed* is the ``created_at`` of its
   outbox row (written inside the request's transaction, just before the commit),
   *visible* the moment student-service's transaction that awarded the XP commits
   (a NOTIFY from a bench-only trigger on its XP ledger, delivered at commit);
2. the sustained rate: a backlog of committed completions (one transaction, the
   endpoint's own code run in-process) drained by the relay, the broker and the
   consumers, from the commit to the last XP visible;
3. the same two figures for the bare bus: ``RabbitMQBus`` publishing the same
   envelope to a consumer in another process, with no outbox, inbox or database —
   the baseline the ratios compare against.

docs/performance.md has the method and the measured numbers.
"""
