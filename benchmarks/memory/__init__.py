"""The memory benchmark: resident memory (RSS) of each service, idle and under a short mixed load.

``make bench BENCH=memory`` (``python -m benchmarks.memory``) starts the whole bench
fleet (every service of ``shared/fleet.py``), and samples each service's RSS — its
process and any children, with psutil — every half second:

1. idle: after start-up and a settle time, before any request;
2. under load: while tutors and students are seeded through the gateway and then,
   paced, lessons are completed (fanning out as events to payment-, student-,
   analytics- and notification-service) and reads go to every service through the
   gateway; the peak of the samples;
3. after: once the load has stopped and every event has been consumed.

docs/performance.md has the method and the measured numbers.
"""
