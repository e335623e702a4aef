"""The local process runner: the whole fleet as processes under supervisord, no Docker.

``python -m shared.runner up|down|status|logs|migrate|env|servers`` (``make run``,
``make stop``, ...). Everything is driven by :data:`shared.fleet.FLEET`:

- :mod:`.layout`       where a fleet lives: ports, database names, vhost, Redis DB, state folder;
- :mod:`.servers`      the local PostgreSQL, Redis and RabbitMQ: checked, started, waited for;
- :mod:`.secrets`      development secrets, generated once under ``var/dev-secrets/``;
- :mod:`.provision`    roles, databases, the vhost and the events exchange, idempotently;
- :mod:`.environment`  the environment each service is started with;
- :mod:`.supervisor`   the supervisord config, and starting/stopping/asking supervisord;
- :mod:`.lifecycle`    ``prepare`` → ``start`` → ``wait_ready`` → ``stop`` → ``teardown``;
- :mod:`.logs`         one request's JSON log lines across the fleet.

The test fleet (:mod:`shared.testing.fleet`) is this runner with a test layout:
other ports, databases, vhost, Redis DB and supervisord.
"""
