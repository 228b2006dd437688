"""HMA's curation routes (``/c/...``): banks and contents, written through ``moderation.services.hma``.

Banks are our banks under HMA's names, contents are bank entries (``moderation.selectors.hma``). As in HMA,
adding content answers 200 (its description says 201), deleting a bank that is not there answers 200, and
a new bank answers 201. HMA's answers that do not carry the ``message`` its description requires (a content
added, updated or deleted) carry HMA's own fields and a ``message`` as well, so both kinds of client read them.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse

from hashing.models import Bank
from moderation.hma import lookup
from moderation.hma.auth import Caller
from moderation.hma.media import fetched, hash_content, uploaded
from moderation.hma.responses import HmaError, body_field, json_body, json_object, json_response
from moderation.selectors.hma import (
    CONTENT_TYPES,
    SIGNAL_TYPES,
    Content,
    bank_by_hma_name,
    bank_config,
    banks_visible,
    content_in_bank,
)
from moderation.services import hma as service

# The metadata keys HMA accepts (its BankedContentMetadata; "collab" is its own and dropped, as HMA drops it).
METADATA_KEYS = {"content_id": str, "content_uri": str, "json": dict}
EXCHANGES_INSTEAD = ("Takedown exchanges hashes with partners over its own signed exchange API and with "
                     "StopNCII and ThreatExchange files; configure them with 'manage.py partner add|policy|key|"
                     "remote' and 'manage.py stopncii' (docs/exchange.md), not through HMA's exchange routes.")


def _bank(hma_name: str) -> Bank:
    bank = bank_by_hma_name(hma_name)
    if bank is None:
        raise HmaError(404, f"bank '{hma_name}' not found")
    return bank


# --- Banks -------------------------------------------------------------------------------------------------

def banks_index(request: HttpRequest, caller: Caller) -> HttpResponse:
    return json_response([bank_config(name, bank) for name, bank in banks_visible()])


def bank_create(request: HttpRequest, caller: Caller) -> HttpResponse:
    data = json_object(request)
    name = body_field(data, "name", "str", required=True)
    ratio = body_field(data, "enabled_ratio", "float")
    enabled = body_field(data, "enabled", "bool")
    if ratio is None:
        ratio = 1.0 if enabled is None or enabled else 0.0
    bank = service.hma_bank_create(hma_name=name, enabled_ratio=ratio, actor=caller.actor)
    lookup.banks_changed()
    return json_response(bank_config(name, bank), 201)


def bank_show(request: HttpRequest, caller: Caller, bank_name: str) -> HttpResponse:
    return json_response(bank_config(bank_name, _bank(bank_name)))


def bank_update(request: HttpRequest, caller: Caller, bank_name: str) -> HttpResponse:
    data = json_object(request)
    new_name = body_field(data, "name", "str")
    ratio = body_field(data, "enabled_ratio", "float")
    enabled = body_field(data, "enabled", "bool")
    bank = service.hma_bank_update(bank=_bank(bank_name), hma_name=bank_name, new_hma_name=new_name,
                                   enabled=enabled, enabled_ratio=ratio, actor=caller.actor)
    lookup.banks_changed()
    return json_response(bank_config(new_name or bank_name, bank))


def bank_delete(request: HttpRequest, caller: Caller, bank_name: str) -> HttpResponse:
    bank = bank_by_hma_name(bank_name)
    if bank is not None:  # as in HMA, deleting a bank that is not there succeeds
        service.hma_bank_delete(bank=bank, hma_name=bank_name, actor=caller.actor)
        lookup.banks_changed()
        lookup.index_changed()
    return json_response({"message": "Done"})


# --- Contents ----------------------------------------------------------------------------------------------

def _form_or_json(request: HttpRequest, name: str) -> Any:
    """A field of a JSON body, or of a multipart form (where metadata is JSON text)."""
    if request.content_type == "application/json":
        data = json_body(request)
        return data.get(name) if isinstance(data, dict) else None
    if name in request.POST:
        value = request.POST[name]
        if name == "metadata":
            try:
                return json.loads(value)
            except ValueError:
                raise HmaError(400, "metadata form field must be valid JSON") from None
        return value
    return None


def _metadata(request: HttpRequest) -> dict[str, Any] | None:
    raw = _form_or_json(request, "metadata")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise HmaError(400, "metadata should be a json object")
    raw = {k: v for k, v in raw.items() if k != "collab"}
    unknown = sorted(set(raw) - set(METADATA_KEYS))
    if unknown:
        raise HmaError(400, f"Invalid metadata: unknown fields {', '.join(unknown)}; use content_id, content_uri "
                            "and json")
    for key, kind in METADATA_KEYS.items():
        if raw.get(key) is not None and not isinstance(raw[key], kind):
            raise HmaError(400, f"Invalid metadata: {key} should be {'an object' if kind is dict else 'a string'}")
    clean = {k: v for k, v in raw.items() if v is not None}
    return clean or None


def content_add(request: HttpRequest, caller: Caller, bank_name: str) -> HttpResponse:
    bank = _bank(bank_name)
    metadata = _metadata(request)
    note = service.check_note(_form_or_json(request, "note"))
    url = request.GET.get("url")
    if url:
        content_type, data = fetched(url, request.GET.get("content_type"))
    elif request.content_type != "application/json" and request.FILES:
        content_type, data = uploaded(request)
    else:
        raise HmaError(400, "Neither `url` nor multipart file upload was received")
    return _add(bank, bank_name, hash_content(content_type, data, request.GET.get("types")), metadata, note, caller)


def signal_add(request: HttpRequest, caller: Caller, bank_name: str) -> HttpResponse:
    bank = _bank(bank_name)
    data = json_body(request)
    if not isinstance(data, dict):
        raise HmaError(400, "Send a JSON object of signal type to hash, e.g. {\"pdq\": \"<64 hex>\"}")
    data = dict(data)
    note = service.check_note(data.pop("note", None))
    return _add(bank, bank_name, data, None, note, caller)


def _add(bank: Bank, bank_name: str, hashes: dict[str, Any], metadata: dict[str, Any] | None, note: str,
         caller: Caller) -> HttpResponse:
    if not hashes:
        raise HmaError(400, "No signals given")
    signals: dict[str, str] = {}
    for signal_type, value in hashes.items():
        if signal_type not in SIGNAL_TYPES:
            raise HmaError(400, f"No such signal type {signal_type}")
        if not isinstance(value, str):
            raise HmaError(400, f"Invalid {signal_type} signal: a hash is a string of hex characters")
        try:
            signals[SIGNAL_TYPES[signal_type]] = lookup.check_signal(signal_type, value)
        except HmaError as exc:
            raise HmaError(400, f"Invalid {signal_type} signal: {exc.message}") from None
    added = service.hma_content_add(bank=bank, hma_name=bank_name, signals=signals, note=note, metadata=metadata,
                                    actor=caller.actor, source=caller.source)
    lookup.index_changed()
    answer: dict[str, Any] = {
        "id": added[0].content_id,
        "signals": {a.signal_type: a.value for a in added},
        # Beyond HMA's answer: what its description promises (BankContentResponse, SuccessResponse).
        "disable_until_ts": 1,
        "bank": bank_config(bank_name, bank),
        "message": "Added",
    }
    if len(added) > 1:  # one content per signal here (docs/hma.md, "Contents")
        answer["ids"] = {a.signal_type: a.content_id for a in added}
    return json_response(answer)


def _content(bank: Bank, content_id: int) -> Content:
    content = content_in_bank(bank, content_id)
    if content is None:
        raise HmaError(404, f"content '{content_id}' not found")
    return content


def content_show(request: HttpRequest, caller: Caller, bank_name: str, content_id: int) -> HttpResponse:
    bank = _bank(bank_name)
    content = _content(bank, content_id)
    answer: dict[str, Any] = {"id": content.entry.pk, "disable_until_ts": content.disable_until_ts,
                              "original_media_uri": None, "bank": bank_config(bank_name, bank)}
    if request.GET.get("include_signals", "false").lower() == "true":
        answer["signals"] = {content.signal_type: content.entry.value}
    if request.GET.get("include_metadata", "true").lower() == "true" and content.extra and content.extra.metadata:
        answer["metadata"] = content.extra.metadata
    if content.extra is not None and content.extra.note:
        answer["note"] = content.extra.note
    return json_response(answer)


def content_update(request: HttpRequest, caller: Caller, bank_name: str, content_id: int) -> HttpResponse:
    bank = _bank(bank_name)
    content = _content(bank, content_id)
    data = json_body(request)
    if not isinstance(data, dict):
        raise HmaError(400, "Send a JSON object, e.g. {\"disable_until_ts\": 0}")
    changes: dict[str, Any] = {}
    if "disable_until_ts" in data:
        changes["disable_until_ts"] = service.disable_until_checked(data["disable_until_ts"])
    if "note" in data:
        changes["note"] = data["note"]
    extra = service.hma_content_update(bank=bank, hma_name=bank_name, entry=content.entry, actor=caller.actor,
                                       **changes)
    lookup.index_changed()
    content = _content(bank, content_id)
    return json_response({
        "id": content.entry.pk, "disable_until_ts": content.disable_until_ts, "collab_metadata": {},
        "original_media_uri": None, "bank": bank_config(bank_name, bank), "user_metadata": extra.metadata,
        "note": extra.note or None, "message": "Updated",
    })


def content_delete(request: HttpRequest, caller: Caller, bank_name: str, content_id: int) -> HttpResponse:
    bank = _bank(bank_name)
    content = content_in_bank(bank, content_id)
    deleted = 0
    if content is not None:
        deleted = service.hma_content_delete(bank=bank, hma_name=bank_name, entry=content.entry, actor=caller.actor)
        lookup.index_changed()
    return json_response({"deleted": deleted, "message": f"Deleted {deleted}"})


# --- Configuration -----------------------------------------------------------------------------------------

def signal_types(request: HttpRequest, caller: Caller) -> HttpResponse:
    return json_response([{"name": name, "enabled_ratio": 1.0} for name in SIGNAL_TYPES])


def content_types(request: HttpRequest, caller: Caller) -> HttpResponse:
    return json_response([{"name": name, "enabled": True} for name in CONTENT_TYPES])


# --- Exchanges: our partner banks, read-only -----------------------------------------------------------------

def _partner_banks() -> dict[str, Bank]:
    return {name: bank for name, bank in banks_visible() if bank.kind == Bank.Kind.PARTNER}


def exchanges_index(request: HttpRequest, caller: Caller) -> HttpResponse:
    """Each bank fed by a partner (push, sync or StopNCII) is an exchange, named as its bank (as in HMA)."""
    return json_response(list(_partner_banks()))


def exchange_show(request: HttpRequest, caller: Caller, exchange_name: str) -> HttpResponse:
    bank = _partner_banks().get(exchange_name)
    if bank is None:
        raise HmaError(404, f"Exchange '{exchange_name}' not found")
    return json_response({"name": exchange_name, "api": "takedown_partner", "enabled": bank.enabled,
                          "bank": exchange_name, "description": bank.description})

