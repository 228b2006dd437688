"""Nearest confirmed examples in embedding space: evidence beside the score that a moderator can check.

"Looks like these three confirmed synthetic cases": case number, decision, distance, and the media only for
someone whose role shows media (and never media withheld for the child-safety procedure).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings

from detection.embedding import ENCODER_SHA256, from_bytes, nearest
from moderation.models import MediaEmbedding, ReportedItem, ReviewTask
from moderation.roles import PERM_VIEW_MEDIA
from moderation.selectors.case import withheld_media_ids
from moderation.selectors.training import ConfirmedExample, confirmed_examples


@dataclass(frozen=True)
class ConfirmedNeighbour:
    case_number: str
    task_id: int | None
    label: str  # "ai" or "real"
    decision: str
    distance: float  # cosine distance, 0 = the same content
    media_id: int | None  # None unless the viewer may see it

    def as_detail(self) -> dict[str, Any]:
        """The form stored in the embedding signal's detail: no media, no ids."""
        return {"case": self.case_number, "label": self.label, "decision": self.decision,
                "distance": round(self.distance, 4)}


def embedding_of(media_id: int) -> np.ndarray | None:
    row = MediaEmbedding.objects.filter(media_id=media_id, encoder_sha256=ENCODER_SHA256).first()
    return from_bytes(bytes(row.vector)) if row else None


def _confirmed_with_vectors() -> tuple[list[ConfirmedExample], np.ndarray]:
    examples = confirmed_examples()
    vectors = dict(MediaEmbedding.objects.filter(media_id__in=[e.media_id for e in examples],
                                                 encoder_sha256=ENCODER_SHA256).values_list("media_id", "vector"))
    kept = [e for e in examples if e.media_id in vectors]
    matrix = np.stack([from_bytes(bytes(vectors[e.media_id])) for e in kept]) if kept else np.zeros((0, 1))
    return kept, matrix


def nearest_confirmed(*, media_id: int, vector: np.ndarray | None = None, count: int | None = None,
                      user: Any = None,
                      pool: tuple[list[ConfirmedExample], np.ndarray] | None = None) -> list[ConfirmedNeighbour]:
    """The confirmed examples nearest to the media's embedding (other reports' only, not the media itself),
    nearest first. `media_id` of each is set only when `user` is given, holds the media permission and the
    media is not withheld. `pool`: the confirmed examples and their vectors, when the caller already read them.

    Reads every confirmed example's embedding (2 KiB each): fine for tens of thousands; beyond that an
    approximate-neighbour index would be the next step."""
    count = settings.TAKEDOWN_EMBEDDING_NEIGHBOURS if count is None else count
    query = vector if vector is not None else embedding_of(media_id)
    if query is None or count <= 0:
        return []
    own_reports = set(ReportedItem.objects.filter(media_id=media_id).values_list("report_id", flat=True))
    examples, matrix = pool if pool is not None else _confirmed_with_vectors()
    examples_and_matrix = [(e, row) for e, row in zip(examples, matrix, strict=True)
                           if e.media_id != media_id and e.report_id not in own_reports]
    if not examples_and_matrix:
        return []
    examples = [e for e, _ in examples_and_matrix]
    found = nearest(query, np.stack([row for _, row in examples_and_matrix]), count)
    chosen = [(examples[index], distance) for index, distance in found]
    may_see = user is not None and user.is_authenticated and user.has_perm(PERM_VIEW_MEDIA)
    withheld = withheld_media_ids([e.media_id for e, _ in chosen]) if may_see else set()
    tasks = dict(ReviewTask.objects.filter(report_id__in=[e.report_id for e, _ in chosen],
                                           kind=ReviewTask.Kind.REPORT).values_list("report_id", "id"))
    return [ConfirmedNeighbour(case_number=e.case_number, task_id=tasks.get(e.report_id), label=e.label,
                               decision=e.decision, distance=distance,
                               media_id=e.media_id if may_see and e.media_id not in withheld else None)
            for e, distance in chosen]


def nearest_confirmed_for_case(*, media_ids: list[int], user: Any) -> dict[int, list[ConfirmedNeighbour]]:
    """`nearest_confirmed` for each of a case's media, as the case page shows them to `user`."""
    vectors = {media_id: embedding_of(media_id) for media_id in media_ids}
    if all(vector is None for vector in vectors.values()):
        return {}
    pool = _confirmed_with_vectors()
    return {media_id: nearest_confirmed(media_id=media_id, vector=vector, user=user, pool=pool)
            for media_id, vector in vectors.items() if vector is not None}
