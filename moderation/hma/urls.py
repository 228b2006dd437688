"""HMA's routes under ``TAKEDOWN_HMA_PREFIX`` (mounted in ``moderation.urls``); anything else there is a JSON 404.

Served: the hashing, matching and status routes, and the curation of banks and contents. Exchanges show our
partner banks read-only; what has no honest mapping (configuring exchanges or signal types) answers 501
naming what to use instead; HMA's development and UI pages are a 404 saying so.
"""

from __future__ import annotations

from django.conf import settings
from django.urls import path, re_path

from moderation.hma import curation, views
from moderation.hma.curation import EXCHANGES_INSTEAD
from moderation.hma.routing import endpoint, not_found, not_served, refuse

app_name = "hma"

SIGNAL_TYPES_FIXED = ("Takedown's HMA routes have the signal types pdq and video_md5, always on; the index's state "
                      "is at /m/index/status, per-bank PDQ thresholds are set with 'manage.py bank configure "
                      "NAME --threshold pdq=N' (docs/hma.md).")
NOT_SERVED = ("HMA's development and UI routes are not served by Takedown: use its moderator console, "
              "'manage.py bank ...' and the routes in docs/hma.md.")
SYNC_STATE = ("Takedown keeps sync state per partner, not per exchange: 'manage.py partner list' shows each "
              "remote's last sync and records applied (docs/exchange.md).")

_CURATION = {"curation": True}

urlpatterns = [
    # Hashing, matching and status (platform key, or an allowed network; status is open).
    path("h/hash", endpoint({"GET": views.hash_get, "POST": views.hash_post}), name="hash"),
    path("m/raw_lookup", endpoint({"GET": views.raw_lookup}), name="raw-lookup"),
    path("m/lookup", endpoint({"GET": views.lookup_get, "POST": views.lookup_post}), name="lookup"),
    path("m/compare", endpoint({"POST": views.compare}), name="compare"),
    path("m/index/status", endpoint({"GET": views.index_status}), name="index-status"),
    path("status", endpoint({"GET": views.status}, public=True), name="status"),
    path("status/live", endpoint({"GET": views.status_live}, public=True), name="status-live"),
    # Curation (a platform key with the curation scope).
    path("c/banks", endpoint({"GET": curation.banks_index, "POST": curation.bank_create}, **_CURATION),
         name="banks"),
    path("c/bank/<str:bank_name>", endpoint({"GET": curation.bank_show, "PUT": curation.bank_update,
                                             "DELETE": curation.bank_delete}, **_CURATION), name="bank"),
    path("c/bank/<str:bank_name>/content", endpoint({"POST": curation.content_add}, **_CURATION),
         name="content-add"),
    path("c/bank/<str:bank_name>/signal", endpoint({"POST": curation.signal_add}, **_CURATION),
         name="signal-add"),
    path("c/bank/<str:bank_name>/content/<int:content_id>",
         endpoint({"GET": curation.content_show, "PUT": curation.content_update,
                   "DELETE": curation.content_delete}, **_CURATION), name="content"),
    path("c/signal_type", endpoint({"GET": curation.signal_types}, **_CURATION), name="signal-types"),
    path("c/signal_type/index", endpoint({"GET": refuse(SIGNAL_TYPES_FIXED)}, **_CURATION)),
    path("c/signal_type/<str:signal_type_name>", endpoint({"PUT": refuse(SIGNAL_TYPES_FIXED)}, **_CURATION)),
    path("c/content_type", endpoint({"GET": curation.content_types}, **_CURATION), name="content-types"),
    # Exchanges: partner banks, read-only.
    path("c/exchanges", endpoint({"GET": curation.exchanges_index, "POST": refuse(EXCHANGES_INSTEAD)},
                                 **_CURATION), name="exchanges"),
    path("c/exchanges/apis", endpoint({"GET": refuse(EXCHANGES_INSTEAD)}, **_CURATION)),
    path("c/exchanges/api/<str:api_name>", endpoint({"GET": refuse(EXCHANGES_INSTEAD),
                                                     "POST": refuse(EXCHANGES_INSTEAD)}, **_CURATION)),
    path("c/exchanges/api/<str:api_name>/schema", endpoint({"GET": refuse(EXCHANGES_INSTEAD)}, **_CURATION)),
    path("c/exchange/<str:exchange_name>", endpoint({"GET": curation.exchange_show, "PUT": refuse(EXCHANGES_INSTEAD),
                                                     "DELETE": refuse(EXCHANGES_INSTEAD)}, **_CURATION),
         name="exchange"),
    path("c/exchange/<str:exchange_name>/status", endpoint({"GET": refuse(SYNC_STATE)}, **_CURATION)),
    # HMA's development and UI routes.
    re_path(r"^(?:dev|ui)(?:/.*)?$", not_served(NOT_SERVED)),
    path("site-map", not_served(NOT_SERVED)),
]
if settings.TAKEDOWN_HMA_PREFIX:  # at the root, the rest of the site answers its own 404s
    urlpatterns.append(re_path(r"^(?P<rest>.*)$", not_found))
