"""The outbox relay benchmark: a commit → its event's publish, with the committing loop busy.

``make bench BENCH=relay`` (``python -m benchmarks.relay``) needs PostgreSQL and RabbitMQ only: a
scratch database with the shared tables, a scratch vhost, one service's ``Database`` and its
``ThreadedOutboxRelay`` as ``create_app`` starts them. The committing loop commits one event at a
time at a paced rate, and after each commit spends some CPU holding the interpreter (the rest of a
request, as a busy service's loop does), so the relay's thread has to get the interpreter from it.
Two ways of reaching the relay are measured in the same run, in alternating rounds:

1. *notify* (the baseline, how every commit reached the relay until decision 0024): the commit
   NOTIFYs, the relay's LISTEN connection wakes it, and a pass claims the row (BEGIN, claim, COMMIT
   around the publish);
2. *hand-over*: the commit hands the envelope to the relay (``Database.outbox_handoff``), which
   publishes it at once and marks it published behind the publishing.

For each: from the commit to the publish beginning and to the broker's confirm (p50–max), and the
CPU the relay's thread and PostgreSQL spent per event. docs/performance.md has the method and the
measured numbers.
"""
