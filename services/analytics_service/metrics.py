"""Business metrics for Grafana, labelled by service, updated from events once each (the inbox
and ``event_log`` make a duplicate a no-op). Revenue is in minor units, per currency; refunds of
charges are counted apart (counters only go up): net revenue = revenue − refunded in PromQL."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from services.analytics_service.domain.projection import GameEntry, MoneyEntry

LESSONS_COMPLETED = Counter("analytics_lessons_completed_total", "Lessons completed", ["service"])
REVENUE = Counter("analytics_revenue_minor_units_total", "Lesson charges (minor units)", ["service", "currency"])
REFUNDED = Counter(
    "analytics_refunded_minor_units_total", "Charges given back, e.g. excused (minor units)", ["service", "currency"]
)
ACTIVE_STUDENTS = Gauge("analytics_active_students", "Students with a completed lesson in 30 days", ["service"])
XP_AWARDED = Counter(
    "analytics_xp_awarded_total", "XP awarded (reversals and negative corrections not subtracted)", ["service"]
)
ACHIEVEMENTS = Counter("analytics_achievements_unlocked_total", "Achievements unlocked", ["service"])


class Metrics:
    def __init__(self, service: str) -> None:
        self.service = service

    def lesson_completed(self) -> None:
        LESSONS_COMPLETED.labels(self.service).inc()

    def active_students(self, count: int) -> None:
        ACTIVE_STUDENTS.labels(self.service).set(count)

    def money(self, entry: MoneyEntry) -> None:
        if entry.kind == "charge":
            REVENUE.labels(self.service, entry.currency).inc(entry.amount)
        elif entry.kind == "charge_refund":
            REFUNDED.labels(self.service, entry.currency).inc(entry.amount)

    def game(self, entry: GameEntry) -> None:
        if entry.kind == "achievement":
            ACHIEVEMENTS.labels(self.service).inc()
        elif entry.amount > 0:
            XP_AWARDED.labels(self.service).inc(entry.amount)
