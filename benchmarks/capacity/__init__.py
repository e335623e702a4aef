"""The fleet-capacity benchmark: the highest request rate of a realistic mix with p99 < 300 ms and no error.

``make bench BENCH=capacity`` (``python -m benchmarks.capacity``) starts the whole fleet as the
bench fleet (``benchmarks/common/fleet.py``: ports +20000, databases ``repitbot_bench_<svc>``),
seeds 200 tutors and 5,000 students (25 each, every fifth with a parent, weeks of lessons,
payments, homework) straight into every service's database with ``shared/seeding.py`` (not
through the API), mints each seeded user an access token the way user-service signs them, and
drives the gateway with wrk and ``lua/mixed.lua``: 85% reads (schedule, balance, profile,
homework, the tutor's students), 15% writes (schedule a lesson, record a top-up, hand in
homework), each request as a random seeded user (``workload.py``). The offered rate is paced and
stepped up, then bisected (``stepping.py``), until a step's p99 reaches 300 ms or any request
fails; the answer is the highest rate that held. Warm-up and steps together measure at most five
minutes, under ``/tmp/repitbot-fleet.lock``.

docs/performance.md ("Fleet capacity") has the method and the measured numbers.
"""
