"""The bot's side of student-service's game layer (DESIGN.md §6): ``StudentServiceIntegration``.

The calls (profile, achievements, XP history, leaderboard, recommendations) go through the gateway with
``MicroserviceClient`` as the signed-in user; ``student_id="me"`` is the calling student. The texts the
screens show (the XP bar, the progress card, tips by code) are built here from the answers, in the
user's language, so every screen that shows the game says it the same way.
"""

from __future__ import annotations

from math import isqrt
from typing import Any

from services.telegram_bot.api import ApiError, MicroserviceClient, UserSession
from services.telegram_bot.i18n import has, t

XP_BAR_CELLS = 10
STUDENTS = "/api/v1/students"


def level_floor(level: int) -> int:
    """Total XP at which ``level`` starts (student-service's formula, DESIGN.md §6): 100·(level−1)^1.5."""
    n = max(level - 1, 0)
    return isqrt(10_000 * n**3)


def xp_bar(xp: int, level: int, next_level_xp: int, cells: int = XP_BAR_CELLS) -> str:
    """The way from this level's threshold to the next one's, in ``cells`` cells (full: ▰, empty: ▱)."""
    start = level_floor(level)
    span = max(next_level_xp - start, 1)
    filled = min(cells, max(0, (xp - start) * cells // span))
    return "▰" * filled + "▱" * (cells - filled)


def achievement_name(lang: str, code: str, fallback: str | None = None) -> str:
    key = f"st_ach_{code}"
    return t(lang, key) if has(key) else (fallback or code)


def rarity_name(lang: str, rarity: str) -> str:
    key = f"st_rarity_{rarity}"
    return t(lang, key) if has(key) else rarity


def progress_text(lang: str, data: dict[str, Any]) -> str:
    """The progress card from :meth:`StudentServiceIntegration.progress`: level, XP bar, streak, the
    unlocked achievements with their rarity and the weekly board around the student."""
    profile = data["profile"]
    lines = [
        t(
            lang,
            "st_progress",
            level=profile["level"],
            bar=xp_bar(profile["xp"], profile["level"], profile["next_level_xp"]),
            xp=profile["xp"],
            next_xp=profile["next_level_xp"],
            streak=profile["current_streak"],
            longest=profile["longest_streak"],
        ),
        "",
    ]
    unlocked = [a for a in data.get("achievements", []) if a.get("unlocked_at")]
    if unlocked:
        lines.append(t(lang, "st_achievements"))
        for item in unlocked:
            name = achievement_name(lang, item["code"], item.get("title"))
            lines.append(f"• {name} ({rarity_name(lang, item['rarity'])})")
    else:
        lines.append(t(lang, "st_no_achievements"))
    board = data.get("leaderboard") or []
    if board:
        lines += ["", t(lang, "st_leaderboard")]
        for entry in board:
            row = t(lang, "st_leaderboard_row", rank=entry["rank"], name=entry["name"], xp=entry["xp"])
            lines.append(f"👉 {row} ({t(lang, 'st_you')})" if entry.get("you") else row)
    return "\n".join(lines)


def tip_text(lang: str, item: dict[str, Any]) -> str:
    """One recommendation in the user's words, from its code and params (the service's English message
    for a rule the bot does not know yet)."""
    params = item.get("params") or {}
    code = item.get("code")
    try:
        if code == "homework_due_soon":
            return t(lang, "st_tip_homework_due_soon", title=params["title"], hours=params["hours_left"])
        if code == "streak_at_risk":
            return t(lang, "st_tip_streak_at_risk", streak=params["current_streak"])
        if code == "close_to_next_level":
            return t(lang, "st_tip_close_to_next_level", level=params["next_level"], xp=params["xp_needed"])
        if code == "material_for_last_topic":
            titles = ", ".join(m["title"] for m in params["materials"])
            return t(lang, "st_tip_material_for_last_topic", topic=params["topic"], title=titles)
    except (KeyError, TypeError):
        pass
    return str(item.get("message") or code)


class StudentServiceIntegration:
    """student-service through the gateway, for the game features of the bot's screens."""

    def __init__(self, api: MicroserviceClient) -> None:
        self.api = api

    async def profile(self, session: UserSession, student_id: str = "me") -> dict[str, Any]:
        """Level, XP, next_level_xp, streaks and unlocked achievements."""
        answer: dict[str, Any] = await self.api.get(session, f"{STUDENTS}/{student_id}/profile")
        return answer

    async def achievements(self, session: UserSession, student_id: str = "me") -> list[dict[str, Any]]:
        """Every achievement with the progress towards it (unlocked ones carry ``unlocked_at``)."""
        answer = await self.api.get(session, f"{STUDENTS}/{student_id}/achievements")
        return list(answer["items"])

    async def xp_history(
        self, session: UserSession, student_id: str = "me", *, limit: int | None = None, cursor: str | None = None
    ) -> dict[str, Any]:
        """One page of the XP ledger, newest first: ``{"items": [...], "next_cursor": ...}``."""
        answer: dict[str, Any] = await self.api.get(session, f"{STUDENTS}/{student_id}/xp", limit=limit, cursor=cursor)
        return answer

    async def leaderboard(
        self, session: UserSession, period: str = "weekly", view: str = "all"
    ) -> list[dict[str, Any]]:
        """The board of the caller's tutor (a student) or of the tutor; ``view="neighbours"``: the
        calling student's place and those around it."""
        answer = await self.api.get(session, f"{STUDENTS}/leaderboard", period=period, view=view)
        return list(answer["items"])

    async def recommendations(self, session: UserSession, student_id: str = "me") -> list[dict[str, Any]]:
        """What the student could do next, most urgent first (render with :func:`tip_text`)."""
        answer = await self.api.get(session, f"{STUDENTS}/{student_id}/recommendations")
        return list(answer["items"])

    async def progress(self, session: UserSession, student_id: str = "me") -> dict[str, Any]:
        """What :func:`progress_text` shows: the profile, the achievements and the weekly neighbours."""
        profile = await self.profile(session, student_id)
        achievements = await self.achievements(session, student_id)
        try:
            board = await self.leaderboard(session, "weekly", "neighbours")
        except ApiError:  # no board yet (no tutor known to the game layer): the rest still shows
            board = []
        return {"profile": profile, "achievements": achievements, "leaderboard": board}
