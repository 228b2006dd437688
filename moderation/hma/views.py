"""HMA's hashing, matching and status routes (``/h/...``, ``/m/...``, ``/status``), as plain Django views.

Paths, parameters and answers are HMA's (its OpenAPI description, ../shared/hma/openapi.json, and the
behaviour notes beside it): distances are strings, ``GET /m/lookup`` ignores ``bypass_coinflip`` while
``POST /m/lookup`` honours it, and each bank takes part in a lookup when its ratio reaches that lookup's coin
flip (``random.Random(seed)``, one draw per lookup, as HMA draws it).
"""

from __future__ import annotations

import random
import time
from typing import Any

from django.http import HttpRequest, HttpResponse

from moderation.hma import lookup
from moderation.hma.auth import Caller
from moderation.hma.media import fetched, hash_content, uploaded
from moderation.hma.responses import HmaError, json_body, json_response, query_params
from moderation.selectors.hma import SIGNAL_TYPES

Matches = dict[str, list[dict[str, Any]]]


def _banks_param(value: str | None) -> set[str] | None:
    return set(value.split(",")) if value else None


# --- /h/hash ---------------------------------------------------------------------------------------------

def hash_get(request: HttpRequest, caller: Caller) -> HttpResponse:
    params, _ = query_params(request, required=("url",))
    content_type, data = fetched(params["url"], params.get("content_type"))
    return json_response(hash_content(content_type, data, params.get("types")))


def hash_post(request: HttpRequest, caller: Caller) -> HttpResponse:
    content_type, data = uploaded(request)
    return json_response(hash_content(content_type, data, request.GET.get("types")))


# --- /m/raw_lookup, /m/lookup ----------------------------------------------------------------------------

def raw_lookup(request: HttpRequest, caller: Caller) -> HttpResponse:
    params, flags = query_params(request, required=("signal", "signal_type"), booleans={"include_distance": False})
    value = lookup.check_signal(params["signal_type"], params["signal"])
    hits = lookup.only_banks(lookup.search(params["signal_type"], value), _banks_param(params.get("banks")))
    lookup.confirmed_matches(hits, api_key_id=_key_id(caller), route="raw_lookup")
    if flags["include_distance"]:
        return json_response({"matches": [{"bank_content_id": h.content_id, "distance": h.distance} for h in hits]})
    return json_response({"matches": [h.content_id for h in hits]})


def _lookup(signal_type: str, signal: str, *, banks: set[str] | None, seed: str | None, bypass: bool,
            caller: Caller, route: str) -> Matches:
    """``{HMA bank name: [{"bank_content_id", "distance"}]}`` for the banks that take part in this lookup."""
    value = lookup.check_signal(signal_type, signal)
    hits = lookup.only_banks(lookup.search(signal_type, value), banks)
    if not bypass:
        # One draw per lookup: a bank takes part when its ratio reaches it (ratio 1.0 always does).
        flip = random.Random(seed).random() if seed is not None else random.random()
        hits = [h for h in hits if h.bank.ratio >= flip]
    lookup.confirmed_matches(hits, api_key_id=_key_id(caller), route=route)
    answer: Matches = {}
    for hit in hits:
        answer.setdefault(hit.bank.hma_name, []).append({"bank_content_id": hit.content_id, "distance": hit.distance})
    return answer


def lookup_get(request: HttpRequest, caller: Caller) -> HttpResponse:
    # bypass_coinflip is declared (and checked as a boolean) but, as in HMA, not used by this route.
    params, _ = query_params(request, booleans={"bypass_coinflip": False})
    banks, seed = _banks_param(params.get("banks")), params.get("seed")
    if params.get("url"):
        content_type, data = fetched(params["url"], params.get("content_type"))
        by_type = {signal_type: _lookup(signal_type, value, banks=banks, seed=seed, bypass=False, caller=caller,
                                        route="lookup")
                   for signal_type, value in _usable(hash_content(content_type, data, params.get("types"))).items()}
        if params.get("signal_type") is not None:
            return json_response(by_type.get(params["signal_type"], {}))
        return json_response(by_type)
    if not params.get("signal") or not params.get("signal_type"):
        raise HmaError(400, "Either url or both signal and signal_type are required")
    return json_response(_lookup(params["signal_type"], params["signal"], banks=banks, seed=seed, bypass=False,
                                 caller=caller, route="lookup"))


def lookup_post(request: HttpRequest, caller: Caller) -> HttpResponse:
    content_type, data = uploaded(request)
    hashes = _usable(hash_content(content_type, data))
    bypass = request.GET.get("bypass_coinflip", "false") == "true"  # HMA's own test, not a schema boolean
    banks, seed = _banks_param(request.GET.get("banks")), request.GET.get("seed")
    return json_response({signal_type: _lookup(signal_type, value, banks=banks, seed=seed, bypass=bypass,
                                               caller=caller, route="lookup_file")
                          for signal_type, value in hashes.items()})


def _usable(hashes: dict[str, str]) -> dict[str, str]:
    """The hashes, or 400 for a photo too flat to hash (HMA fails on its empty PDQ the same way)."""
    if hashes.get("pdq") == "":
        raise HmaError(400, "invalid signal: the photo has too little detail for a PDQ hash (quality below 50)")
    return hashes


def _key_id(caller: Caller) -> int | None:
    return caller.key.pk if caller.key is not None else None


# --- /m/compare, /m/index/status -------------------------------------------------------------------------

def compare(request: HttpRequest, caller: Caller) -> HttpResponse:
    data = json_body(request)
    if not isinstance(data, dict):
        raise HmaError(400, "Request input was not a dict")
    result: dict[str, Any] = {}
    for signal_type, pair in data.items():
        if not isinstance(pair, list):
            raise HmaError(400, f"Comparison hashes for {signal_type} was not a list")
        if len(pair) != 2:
            raise HmaError(400, "Comparison hash list length must be exactly 2")
        if signal_type not in SIGNAL_TYPES:
            raise HmaError(400, f"No such SignalType '{signal_type}'")
        if not all(isinstance(value, str) for value in pair):
            raise HmaError(400, f"Invalid {signal_type} hash: hashes are strings")
        try:
            left, right = (lookup.check_signal(signal_type, value) for value in pair)
        except HmaError as exc:
            raise HmaError(400, f"Invalid {signal_type} hash: {exc.message}") from None
        if signal_type == "pdq":
            distance = (int(left, 16) ^ int(right, 16)).bit_count()
            result[signal_type] = [distance <= lookup.PDQ_DEFAULT_THRESHOLD, {"distance": distance}]
        else:
            result[signal_type] = [left == right, {}]
    return json_response(result)


def index_status(request: HttpRequest, caller: Caller) -> HttpResponse:
    wanted = request.GET.get("signal_type")
    if wanted is not None and wanted not in SIGNAL_TYPES:
        raise HmaError(400, f"No such signal type '{wanted}'")
    answer: dict[str, Any] = {}
    if wanted in (None, "pdq"):
        state = lookup.index_state()
        answer["pdq"] = {"present": state["built"], "built_to": state["built_to"], "size": state["size"]}
    if wanted in (None, "video_md5"):
        # Exact hashes are looked up in the database: always present and current.
        answer["video_md5"] = {"present": True, "built_to": int(time.time()), "size": lookup.md5_count()}
    return json_response(answer)


# --- /status, /status/live --------------------------------------------------------------------------------

def status(request: HttpRequest, caller: Caller) -> HttpResponse:
    """200 I-AM-ALIVE when the match index is built and fresh; 503 INDEX-NOT-LOADED or INDEX-STALE."""
    state = lookup.index_state()
    if not state["built"]:
        return HttpResponse("INDEX-NOT-LOADED", status=503, content_type="text/plain")
    if not state["ready"]:
        return HttpResponse("INDEX-STALE", status=503, content_type="text/plain")
    return HttpResponse("I-AM-ALIVE", content_type="text/plain")


def status_live(request: HttpRequest, caller: Caller) -> HttpResponse:
    return HttpResponse("I-AM-ALIVE", content_type="text/plain")
