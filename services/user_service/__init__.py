"""user-service: users, roles, tutor–student–parent links, credentials, refresh tokens, invites (DESIGN.md §1, §4)."""
