"""C2PA Content Credentials: a signed record, embedded in the file, of how it was made.

Reads the active manifest with c2pa-python. A ``c2pa.actions`` assertion whose action carries the
IPTC digitalSourceType ``trainedAlgorithmicMedia`` (or ``compositeWithTrainedAlgorithmicMedia``)
is the generator declaring, under its signature, that the image is AI-made. The signer, the
validation state (``Invalid`` / ``Valid`` / ``Trusted``) and the trust decision are reported.

Trust comes from the shipped list `detection/trust/c2pa-trust-list.pem` (see its README) plus the
operator's own PEM file named by ``TAKEDOWN_C2PA_TRUST_ANCHORS``; nothing is fetched at run time
(remote manifests and OCSP are switched off).

A manifest that declares nothing about AI, or no manifest at all, leaves the score where it is:
most files carry no Content Credentials and platforms strip them.
"""

from __future__ import annotations

import functools
import io
import os
from pathlib import Path
from typing import Any

from PIL import Image

from detection.signals.base import NEUTRAL, Signal, open_untrusted

NAME = "c2pa"
WEIGHT = 1.0

TRUST_LIST = Path(__file__).resolve().parent.parent / "trust" / "c2pa-trust-list.pem"
TRUST_ENV = "TAKEDOWN_C2PA_TRUST_ANCHORS"

# IPTC digital source types that declare generative AI (http://cv.iptc.org/newscodes/digitalsourcetype/).
AI_SOURCE_TYPES: dict[str, str] = {
    "trainedalgorithmicmedia": "made by a generative AI model",
    "compositewithtrainedalgorithmicmedia": "a composite that includes AI-generated elements",
}

# Evidence values by validation state. Hand-set: a declaration signed by a listed authority is as
# strong as evidence gets; an intact signature by an unlisted signer is still the maker's own
# statement (nobody gains by falsely declaring AI); a broken signature means the file changed after
# signing, so the statement may belong to a different picture. 0.98 alone lifts the prior 0.2 to 0.92.
# A composite declaration counts the same: for a face swap, "part of it is generated" is the point.
VALUES: dict[str, float] = {"Trusted": 0.99, "Valid": 0.98, "Invalid": 0.85}

_MIME = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "TIFF": "image/tiff",
    "AVIF": "image/avif",
    "BMP": "image/bmp",
}
# JUMBF box type and the C2PA manifest-store label: a file with neither has no embedded manifest,
# and the SDK is not called at all.
_MARKERS = (b"jumb", b"c2pa")

NO_MANIFEST = "No C2PA Content Credentials in the file (most files have none, so absence proves nothing)"


@functools.cache
def _context(extra_anchors_path: str) -> Any:
    import c2pa  # lazy, as in _read: the native SDK is loaded only once a file carries C2PA markers

    anchors = TRUST_LIST.read_text(encoding="utf-8")
    if extra_anchors_path:
        anchors += "\n" + Path(extra_anchors_path).read_text(encoding="utf-8")
    settings = {
        "verify": {"verify_trust": True, "remote_manifest_fetch": False, "ocsp_fetch": False},
        "trust": {"trust_anchors": anchors},
    }
    return c2pa.Context(settings=c2pa.Settings.from_dict(settings))


def c2pa_signal(data: bytes, image: Image.Image | None = None) -> Signal:
    """Read C2PA Content Credentials. Never raises on odd input; an unreadable manifest is reported."""
    if not any(marker in data for marker in _MARKERS):
        return Signal(NAME, NEUTRAL, WEIGHT, {"summary": NO_MANIFEST, "manifest": False})
    try:
        fmt = image.format if image is not None else None
        if fmt is None:
            with open_untrusted(data) as opened:
                fmt = opened.format
        return _read(data, _MIME.get(fmt or "", "application/octet-stream"))
    except Exception as exc:  # the SDK raises C2paError subclasses; Pillow its own; none may escape
        kind = type(exc).__name__.lstrip("_")
        if "ManifestNotFound" in kind or "JumbfNotFound" in str(exc):
            return Signal(NAME, NEUTRAL, WEIGHT, {"summary": NO_MANIFEST, "manifest": False})
        return Signal(
            NAME,
            NEUTRAL,
            WEIGHT,
            {
                "summary": f"The file carries C2PA data that could not be read ({kind}); it was not used",
                "manifest": True,
                "error": str(exc)[:300],
            },
        )


def _read(data: bytes, mime: str) -> Signal:
    import c2pa  # lazy: the native SDK is heavy, and most files carry no manifest (c2pa_signal checks first)

    with c2pa.Reader(mime, io.BytesIO(data), context=_context(os.environ.get(TRUST_ENV, ""))) as reader:
        manifest = reader.get_active_manifest() or {}
        state = reader.get_validation_state() or "Invalid"
        results = reader.get_validation_results() or {}
    failures = [
        str(item.get("code"))
        for item in (results.get("activeManifest") or {}).get("failure", [])
        if isinstance(item, dict)
    ]
    signature = manifest.get("signature_info") or {}
    signer = signature.get("common_name") or signature.get("issuer") or "an unnamed signer"
    generators = [
        str(info.get("name"))
        for info in manifest.get("claim_generator_info") or []
        if isinstance(info, dict) and info.get("name")
    ] or ([str(manifest["claim_generator"])] if manifest.get("claim_generator") else [])
    trusted = state == "Trusted"
    actions = _actions(manifest)
    ai_actions = [action for action in actions if action["source_type"].lower() in AI_SOURCE_TYPES]
    detail: dict[str, Any] = {
        "manifest": True,
        "validation_state": state,
        "trusted": trusted,
        "signer": signer,
        "issuer": signature.get("issuer"),
        "signed_at": signature.get("time"),
        "claim_generator": generators,
        "actions": actions[:16],
        "failures": failures[:16],
    }
    trust_words = {
        "Trusted": f"signed by {signer}, whose certificate chains to the C2PA trust list",
        "Valid": f"signed by {signer}; the signature is intact but the signer is not on the trust list",
        "Invalid": f"signed by {signer}, but validation failed ({', '.join(failures[:3]) or 'unknown reason'}), "
        "so the file was changed after signing or the manifest is damaged",
    }[state if state in ("Trusted", "Valid") else "Invalid"]
    if not ai_actions:
        detail["summary"] = (
            f"C2PA Content Credentials are present ({trust_words}) and declare no AI generation; "
            "this neither raises nor lowers the score"
        )
        return Signal(NAME, NEUTRAL, WEIGHT, detail)
    value = VALUES[state if state in ("Trusted", "Valid") else "Invalid"]
    first = ai_actions[0]
    detail["summary"] = (
        f"C2PA Content Credentials declare the image {AI_SOURCE_TYPES[first['source_type'].lower()]} "
        f"(action {first['action']}), {trust_words}"
    )
    detail["declared_source_type"] = first["source_type"]
    return Signal(NAME, value, WEIGHT, detail)


def _actions(manifest: dict[str, Any]) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    for assertion in manifest.get("assertions") or []:
        if not isinstance(assertion, dict) or not str(assertion.get("label", "")).startswith("c2pa.actions"):
            continue
        for action in (assertion.get("data") or {}).get("actions") or []:
            if not isinstance(action, dict):
                continue
            source = str(action.get("digitalSourceType") or "")
            found.append(
                {
                    "action": str(action.get("action", "")),
                    "source_type": source.rstrip("/").rsplit("/", 1)[-1],
                    "software": str((action.get("softwareAgent") or {}).get("name", ""))
                    if isinstance(action.get("softwareAgent"), dict)
                    else str(action.get("softwareAgent") or ""),
                }
            )
    return found
