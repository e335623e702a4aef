"""Access links. Interface used by shared/app.py:

ACCESS_LINK_HANDLERS: dict[str, EventHandler]   student.linked / student.unlinked -> access_links rows
AccessResolver(http: ServiceClient)   local table first, then user-service /internal/links (cached)
"""
# STUB: owned by the auth helper — fill in.
