"""Cursor paging over a collection ordered by ``_id`` (Anthropic Admin API style), one round trip.

``limit`` items after ``after_id`` or before ``before_id`` (never both) in list order
(``descending``: newest first, for time-ordered ids from app/store/ids.py). One more item than
``limit`` is read to answer ``has_more``. Returns ``(items in list order, has_more)``.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING


async def find_page(collection: Any, query: dict[str, Any], *, limit: int, after_id: str | None = None,
                    before_id: str | None = None, descending: bool = False) -> tuple[list[dict[str, Any]], bool]:
    forward = before_id is None
    # Walking forward in list order: ids greater (ascending) or smaller (descending) than the cursor.
    op = ("$lt" if descending else "$gt") if forward else ("$gt" if descending else "$lt")
    cursor_id = after_id if forward else before_id
    where = dict(query)
    if cursor_id is not None:
        where["_id"] = {op: cursor_id}
    order = (DESCENDING if descending else ASCENDING) if forward else (ASCENDING if descending else DESCENDING)
    docs = await collection.find(where).sort("_id", order).limit(limit + 1).to_list(length=limit + 1)
    has_more = len(docs) > limit
    docs = docs[:limit]
    if not forward:
        docs.reverse()
    return docs, has_more
