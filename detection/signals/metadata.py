"""Evidence from metadata that generators and cameras write into image files.

Looks at PNG text chunks (tEXt / zTXt / iTXt), XMP packets (IPTC DigitalSourceType, CreatorTool),
JPEG / GIF comments and EXIF. Metadata is easy to strip and easy to forge, so it is strong evidence
when a generator's own record is present and almost none when it is absent.

Every read is bounded (bytes scanned, text length, chunk count, findings kept), the regular
expressions have no nested repetition, and nothing here raises on malformed metadata: a part that
cannot be read is skipped and named in ``detail["notes"]``.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from dataclasses import dataclass
from typing import Any

from PIL import Image

from detection.signals.base import NEUTRAL, Signal, open_untrusted

NAME = "metadata"

# The metadata signal's value already encodes how far each finding can be trusted, so the combiner
# takes it at face value.
WEIGHT = 1.0

# Evidence values. Hand-set, not fitted (there is no labelled set of reported items yet); they rank
# how hard each kind of record is to produce by accident. Change them together with
# detection.scoring.MODEL_VERSION.
STRUCTURED_RECORD = 0.98  # a generator's own settings record: A1111 'parameters', a ComfyUI graph, ...
NAMED_TOOL = 0.95  # a tool field (Software, Source, CreatorTool) naming a generator: one string, easy to set
UNATTRIBUTED_PROMPT = 0.8  # a 'prompt' text chunk in no format we recognise
CAMERA_EXIF = 0.4  # camera Make / Model: weak, any tool can write them

NOTHING_FOUND = "No generator metadata found (most platforms strip metadata, so absence proves nothing)"

# IPTC DigitalSourceType terms (http://cv.iptc.org/newscodes/digitalsourcetype/), lower-cased:
# term -> (value, what it means). Terms not listed are reported with a neutral value.
# A claimed camera / scanner origin is mild evidence: the tag is as easy to edit as any other.
_CAPTURED = 0.35
_WEAK = ", weak evidence because XMP is easily edited"
DIGITAL_SOURCE_TYPES: dict[str, tuple[float, str]] = {
    "trainedalgorithmicmedia": (0.97, "the file declares itself made by a generative AI model"),
    "compositewithtrainedalgorithmicmedia": (
        0.9,
        "the file declares itself a composite that includes AI-generated elements",
    ),
    "algorithmicmedia": (0.85, "the file declares itself made purely by an algorithm, not captured"),
    "compositesynthetic": (0.85, "the file declares itself a composite that includes synthetic elements"),
    "digitalcapture": (_CAPTURED, "the file declares itself a digital camera capture" + _WEAK),
    "negativefilm": (_CAPTURED, "the file declares itself a scan of a film negative" + _WEAK),
    "positivefilm": (_CAPTURED, "the file declares itself a scan of a film positive" + _WEAK),
    "print": (_CAPTURED, "the file declares itself a scan of a print" + _WEAK),
}

# Bounds on what is read.
MAX_SCAN_BYTES = 1 << 20  # raw bytes searched for an XMP packet Pillow did not hand over
MAX_XMP_CHARS = 512 * 1024  # of one XMP packet
MAX_TEXT_CHARS = 1 << 20  # of one text field (also the zlib output limit for compressed chunks)
MAX_NAME_SEARCH_CHARS = 4096  # of a field searched for generator names
MAX_PNG_CHUNKS = 4096
MAX_TEXT_FIELDS = 256
MAX_TAG_MATCHES = 16  # DigitalSourceType occurrences looked at in one packet
MAX_FINDINGS = 32
EXCERPT_CHARS = 200

# Generator names, most specific first, matched only in fields that name a tool (Software, Source,
# CreatorTool, EXIF Make / Model / Artist) or in a generator's own settings record: never in free
# text such as a title, where "in the style of Midjourney" says nothing about the file.
_GENERATOR_NAMES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        ("NovelAI", r"\bnovel\s?ai\b"),
        ("ComfyUI", r"\bcomfy\s?ui\b"),
        ("InvokeAI", r"\binvoke\s?ai\b"),
        ("Fooocus", r"\bfooocus\b"),
        ("Stable Diffusion WebUI Forge", r"\b(?:sd|stable[-_ ]diffusion)[-_ ]?web[-_ ]?ui[-_ ]forge\b"),
        (
            "Stable Diffusion web UI",
            r"\b(?:automatic1111|a1111|(?:sd|stable[-_ ]diffusion)[-_ ]?web[-_ ]?ui)\b",
        ),
        ("DreamStudio", r"\bdream\s?studio\b"),
        ("Stable Diffusion", r"\bstable[-_ ]?diffusion\b|\bsdxl\b|\bstability\s?ai\b"),
        ("Midjourney", r"\bmid[-_ ]?journey\b"),
        ("DALL·E", r"\bdall[-·• ]?e\b"),
        ("ChatGPT / OpenAI image generation", r"\bchatgpt\b|\bgpt-?4o\b|\bgpt-image\b|\bopenai\b"),
        ("Adobe Firefly", r"\bfirefly\b"),
        # "imagen" alone is Spanish for "image", so require a version or the vendor.
        ("Google Imagen", r"\bgoogle\s+imagen\b|\bimagen\s?[1-9]\b"),
        ("FLUX", r"\bflux(?:\.1)?\b|\bblack\s+forest\s+labs\b"),
        ("Ideogram", r"\bideogram\b"),
        ("Leonardo.Ai", r"\bleonardo[. ]ai\b"),
        ("Playground", r"\bplayground\s?(?:ai|v[1-9])\b"),
        ("Bing Image Creator", r"\bbing\s+image\s+creator\b"),
        ("Craiyon", r"\bcraiyon\b"),
        ("NightCafe", r"\bnightcafe\b"),
        ("FaceFusion", r"\bface\s?fusion\b"),
        ("DeepFaceLab", r"\bdeep\s?face\s?lab\b"),
    )
)

# A1111 / Forge / SD.Next write "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, ..." after the prompt.
_SD_SETTING = re.compile(
    r"\b(Steps|Sampler|CFG scale|Seed|Size|Model hash|Negative prompt)\s*:\s*\S", re.IGNORECASE
)
_SD_MODEL = re.compile(r"\bModel:\s*([^,\n]{1,100})")
_FORGE_VERSION = re.compile(r"\bVersion:\s*f\d")

_DST_TAG = re.compile(r"DigitalSourceType\b")
_CLOSING_TAG = re.compile(r"</[\w-]{0,40}:?$")  # what precedes the name in a closing tag
# The value is a NewsCodes URI, or (seen in the wild) the bare term, in attribute or element form.
_DST_VALUE = re.compile(
    r"""digitalsourcetype/([A-Za-z]{2,60})"""
    r"""|^\s*=\s*["']\s*([A-Za-z]{2,60})\s*["']"""
    r"""|^\s*>\s*([A-Za-z]{2,60})\s*<""",
    re.IGNORECASE,
)
_DST_WINDOW = 400  # characters after the tag name in which its value must appear
_CREATOR_TOOL = re.compile(r"""CreatorTool\s*(?:=\s*["']([^"'<>]{1,200})|>\s*([^<]{1,200})<)""")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_XMP_OPENERS = (b"<x:xmpmeta", b"<?xpacket begin")
_XMP_CLOSERS = (b"</x:xmpmeta>", b"<?xpacket end")

_INVOKEAI_KEYS = frozenset(
    {"invokeai_metadata", "invokeai_graph", "invokeai_workflow", "sd-metadata", "dream"}
)
_COMFYUI_KEYS = frozenset({"prompt", "workflow"})
# Fields that may carry a settings record in text or JSON form (NovelAI's Comment, A1111's EXIF
# UserComment for JPEG / WebP output).
_SETTINGS_KEYS = frozenset({"comment", "usercomment", "imagedescription", "description"})
_TOOL_KEYS = frozenset(
    {"software", "source", "generator", "creator", "creatortool", "make", "model", "artist"}
)

# EXIF tags read (base IFD), and UserComment in the Exif sub-IFD.
_EXIF_TAGS: tuple[tuple[int, str], ...] = (
    (0x0131, "Software"),
    (0x010F, "Make"),
    (0x0110, "Model"),
    (0x013B, "Artist"),
    (0x010E, "ImageDescription"),
)
_EXIF_IFD = 0x8769
_EXIF_USER_COMMENT = 0x9286


@dataclass(frozen=True)
class _Finding:
    kind: str  # "generator-record", "generator-name", "digital-source-type", "camera", "prompt"
    field: str  # where it was found, e.g. "png:parameters", "exif:Software", "xmp:DigitalSourceType"
    value: float
    summary: str
    generator: str | None = None
    excerpt: str | None = None
    model: str | None = None  # the checkpoint / model the record names, when it names one

    def as_dict(self) -> dict[str, Any]:
        return {key: item for key, item in self.__dict__.items() if item is not None}


def metadata_signal(data: bytes, image: Image.Image | None = None) -> Signal:
    """Look for generator or camera metadata in an image file.

    `data` is the whole file; `image`, when given, is that file opened with Pillow (pixels need not
    be loaded). Returns a signal whose value comes from the strongest finding, 0.5 when there is
    none. All findings are listed in ``detail["findings"]``; parts that could not be read are named
    in ``detail["notes"]``. Never raises on malformed input.
    """
    notes: list[str] = []
    opened_here = image is None
    if image is None:
        image = _open_quietly(data, notes)
    try:
        texts = _text_fields(data, image, notes)
        xmp_packets = _xmp_packets(data, image, texts)
    finally:
        if opened_here and image is not None:
            image.close()

    findings: list[_Finding] = []
    seen_source_types: set[str] = set()
    for packet in xmp_packets:
        findings.extend(_digital_source_type_findings(packet, seen_source_types))
        tool = _creator_tool(packet)
        if tool:
            texts.setdefault("xmp:CreatorTool", tool)
    findings.extend(_text_findings(texts))
    camera = _camera_finding(texts, findings)
    if camera:
        findings.append(camera)
    return _signal(findings[:MAX_FINDINGS], notes)


# -- Gathering text -------------------------------------------------------------------------------


def _open_quietly(data: bytes, notes: list[str]) -> Image.Image | None:
    try:
        return open_untrusted(data)
    except Exception as exc:  # Pillow raises many types on hostile input; none of them matter here.
        notes.append(
            f"The file could not be opened as an image ({type(exc).__name__}); "
            "only its raw bytes were searched."
        )
        return None


def _text_fields(data: bytes, image: Image.Image | None, notes: list[str]) -> dict[str, str]:
    """Every text field worth examining, keyed "<where>:<name>" (e.g. "png:parameters")."""
    texts: dict[str, str] = {}

    def add(label: str, text: str | None) -> None:
        if text and len(texts) < MAX_TEXT_FIELDS:
            texts.setdefault(label, text[:MAX_TEXT_CHARS])

    # Read PNG chunks from the bytes: Pillow only parses text chunks placed after the image data
    # once the pixels are loaded, and the image handed in may not be.
    for keyword, text in _png_text_chunks(data, notes):
        add(f"png:{keyword}", text)
    if image is not None:
        fmt = (image.format or "image").lower()
        for key, item in image.info.items():
            if not isinstance(key, str):
                continue
            if fmt == "png" and isinstance(item, str):
                add(f"png:{key}", item)
            elif key == "comment" and isinstance(item, str | bytes):
                add(f"{fmt}:comment", _decode(item))
        for label, text in _exif_fields(image, notes).items():
            add(label, text)
    return texts


def _png_text_chunks(data: bytes, notes: list[str]) -> list[tuple[str, str]]:
    if not data.startswith(_PNG_SIGNATURE):
        return []
    found: list[tuple[str, str]] = []
    pos = len(_PNG_SIGNATURE)
    for _ in range(MAX_PNG_CHUNKS):
        if pos + 8 > len(data):
            break
        length, chunk_type = struct.unpack(">I4s", data[pos : pos + 8])
        start, end = pos + 8, pos + 8 + length
        if end > len(data):
            notes.append("The PNG is cut short inside a chunk; chunks after that point were not read.")
            break
        if chunk_type in (b"tEXt", b"zTXt", b"iTXt"):
            try:
                found.append(_png_text(chunk_type, data[start:end]))
            except (ValueError, IndexError, zlib.error):
                notes.append(f"A malformed PNG {chunk_type.decode()} chunk was skipped.")
        elif chunk_type == b"IEND":
            break
        pos = end + 4  # skip the CRC
    return found


def _png_text(chunk_type: bytes, body: bytes) -> tuple[str, str]:
    keyword, _, rest = body.partition(b"\x00")
    key = keyword.decode("latin-1")
    if chunk_type == b"tEXt":
        return key, rest.decode("latin-1")
    if chunk_type == b"zTXt":
        return key, _inflate(rest[1:]).decode("latin-1")
    # iTXt: compression flag, method, language tag \0, translated keyword \0, UTF-8 text.
    compressed = rest[0] == 1
    _, _, rest = rest[2:].partition(b"\x00")
    _, _, text = rest.partition(b"\x00")
    return key, (_inflate(text) if compressed else text).decode("utf-8", errors="replace")


def _inflate(compressed: bytes) -> bytes:
    # Bounded: a small chunk can inflate to gigabytes.
    return zlib.decompressobj().decompress(compressed, MAX_TEXT_CHARS)


def _exif_fields(image: Image.Image, notes: list[str]) -> dict[str, str]:
    fields: dict[str, str] = {}
    try:
        exif = image.getexif()
        for tag, name in _EXIF_TAGS:
            text = _exif_text(exif.get(tag))
            if text:
                fields[f"exif:{name}"] = text
        comment = _exif_text(exif.get_ifd(_EXIF_IFD).get(_EXIF_USER_COMMENT))
        if comment:
            fields["exif:UserComment"] = comment
    except Exception as exc:  # Pillow's EXIF reader can fail in many ways on hostile input.
        notes.append(f"The EXIF block could not be read ({type(exc).__name__}); it was ignored.")
        return fields
    raw = image.info.get("exif")
    if not exif and isinstance(raw, bytes) and len(raw) > 8:
        notes.append("The file has an EXIF block that could not be parsed; it was ignored.")
    return fields


def _exif_text(item: object) -> str | None:
    if isinstance(item, str):
        return item.strip("\x00 \t\r\n") or None
    if not isinstance(item, bytes):
        return None
    item = item[:MAX_TEXT_CHARS]
    # UserComment starts with an 8-byte character-code prefix.
    prefix, body = item[:8], item[8:]
    if prefix == b"UNICODE\x00":
        # The byte order is not recorded; ASCII-range text has its zero bytes on the high side.
        big_endian = body[0::2].count(0) >= body[1::2].count(0)
        text = body.decode("utf-16-be" if big_endian else "utf-16-le", errors="replace")
    elif prefix in (b"ASCII\x00\x00\x00", b"\x00" * 8):
        text = _decode(body)
    else:
        text = _decode(item)
    return text.strip("\x00 \t\r\n") or None


def _decode(item: str | bytes) -> str:
    return item if isinstance(item, str) else item.decode("utf-8", errors="replace")


def _xmp_packets(data: bytes, image: Image.Image | None, texts: dict[str, str]) -> list[str]:
    """XMP packets from PNG iTXt, Pillow's parse (JPEG APP1, WebP, TIFF) and the raw file head."""
    packets: list[str] = []
    for label in [label for label in texts if label.lower() == "png:xml:com.adobe.xmp"]:
        packets.append(texts.pop(label)[:MAX_XMP_CHARS])
    if image is not None:
        item = image.info.get("xmp")
        if isinstance(item, str | bytes):
            packets.append(_decode(item[:MAX_XMP_CHARS]))
    if not packets:  # e.g. Pillow could not open the file, or keeps XMP where it does not say
        raw = _raw_xmp_packet(data[:MAX_SCAN_BYTES])
        if raw:
            packets.append(raw)
    return list(dict.fromkeys(packets))


def _raw_xmp_packet(head: bytes) -> str | None:
    for opener, closer in zip(_XMP_OPENERS, _XMP_CLOSERS, strict=True):
        start = head.find(opener)
        if start < 0:
            continue
        end = head.find(closer, start, start + MAX_XMP_CHARS)
        stop = end + len(closer) if end >= 0 else start + MAX_XMP_CHARS
        return head[start:stop].decode("utf-8", errors="replace")
    return None


# -- Findings -------------------------------------------------------------------------------------


def _digital_source_type_findings(packet: str, seen: set[str]) -> list[_Finding]:
    """One finding per DigitalSourceType term not already in `seen` (which it extends)."""
    findings: list[_Finding] = []
    for index, tag in enumerate(_DST_TAG.finditer(packet)):
        if index >= MAX_TAG_MATCHES:
            break
        if _CLOSING_TAG.search(packet[max(0, tag.start() - 48) : tag.start()]):
            continue
        window = packet[tag.end() : tag.end() + _DST_WINDOW]
        match = _DST_VALUE.search(window)
        if not match:
            continue
        term = next(group for group in match.groups() if group)
        if term.lower() in seen:
            continue
        seen.add(term.lower())
        value, meaning = DIGITAL_SOURCE_TYPES.get(
            term.lower(), (NEUTRAL, "a source type that says nothing about synthesis")
        )
        findings.append(
            _Finding(
                kind="digital-source-type",
                field="xmp:DigitalSourceType",
                value=value,
                summary=f"XMP DigitalSourceType is '{term}': {meaning}",
                excerpt=_excerpt(packet[tag.start() : tag.end() + match.end()]),
            )
        )
    return findings


def _creator_tool(packet: str) -> str | None:
    match = _CREATOR_TOOL.search(packet)
    if not match:
        return None
    return (match.group(1) or match.group(2) or "").strip() or None


def _text_findings(texts: dict[str, str]) -> list[_Finding]:
    findings: list[_Finding] = []
    tool_fields = " ".join(
        text[:MAX_NAME_SEARCH_CHARS] for label, text in texts.items() if _key(label) in _TOOL_KEYS
    )
    for label, text in texts.items():
        key = _key(label)
        finding: _Finding | None
        if key == "parameters":
            finding = _parameters_finding(label, text)
        elif key == "fooocus_scheme":
            finding = _record(label, "Fooocus", text)
        elif key in _INVOKEAI_KEYS:
            finding = _record(label, "InvokeAI", text)
        elif key in _COMFYUI_KEYS:
            finding = _comfyui_finding(label, text)
        elif key in _SETTINGS_KEYS:
            finding = _settings_finding(label, text, tool_fields)
        elif key in _TOOL_KEYS:
            finding = _named_tool_finding(label, text)
        else:
            finding = None
        if finding:
            findings.append(finding)
    return findings


def _parameters_finding(label: str, text: str) -> _Finding | None:
    head = text[:MAX_TEXT_CHARS]
    if "fooocus" in head.lower():
        return _record(label, "Fooocus", text)
    if _looks_like_sd_settings(head):
        forge = _FORGE_VERSION.search(head)
        generator = "Stable Diffusion WebUI Forge" if forge else "Stable Diffusion web UI"
        model = _SD_MODEL.search(head)
        return _record(label, generator, text, model=model.group(1).strip() if model else None)
    return None


def _looks_like_sd_settings(text: str) -> bool:
    return len({name.lower() for name in _SD_SETTING.findall(text[:MAX_TEXT_CHARS])}) >= 2


def _comfyui_finding(label: str, text: str) -> _Finding | None:
    graph = _json_object(text)
    if graph is not None:
        nodes = [node for node in graph.values() if isinstance(node, dict) and "class_type" in node]
        if nodes or isinstance(graph.get("nodes"), list):
            return _record(label, "ComfyUI", text, model=_comfyui_model(nodes))
    if _key(label) == "prompt" and text.strip():
        return _Finding(
            kind="prompt",
            field=label,
            value=UNATTRIBUTED_PROMPT,
            summary=f"{_where(label)} holds what looks like a prompt from an unidentified image generator",
            excerpt=_excerpt(text),
        )
    return None


def _comfyui_model(nodes: list[dict[str, Any]]) -> str | None:
    for node in nodes:
        inputs = node.get("inputs")
        if isinstance(inputs, dict):
            for key in ("ckpt_name", "unet_name", "model_name"):
                name = inputs.get(key)
                if isinstance(name, str) and name:
                    return name[:EXCERPT_CHARS]
    return None


def _settings_finding(label: str, text: str, tool_fields: str) -> _Finding | None:
    settings = _json_object(text)
    if settings is not None and "steps" in settings and {"sampler", "scale", "seed", "uc"} & settings.keys():
        # "uc" (undesired content) is NovelAI's name for the negative prompt.
        novelai = "uc" in settings or _generator_name(tool_fields) == "NovelAI"
        return _record(label, "NovelAI" if novelai else None, text)
    if _looks_like_sd_settings(text):
        return _parameters_finding(label, text)
    return None


def _named_tool_finding(label: str, text: str) -> _Finding | None:
    generator = _generator_name(text)
    if not generator:
        return None
    return _Finding(
        kind="generator-name",
        field=label,
        value=NAMED_TOOL,
        summary=f"{_where(label)} names the image generator {generator} ('{_excerpt(text, 80)}')",
        generator=generator,
        excerpt=_excerpt(text),
    )


def _camera_finding(texts: dict[str, str], findings: list[_Finding]) -> _Finding | None:
    make, model = texts.get("exif:Make"), texts.get("exif:Model")
    if not (make or model):
        return None
    if any(finding.field in ("exif:Make", "exif:Model") for finding in findings):
        return None  # Make / Model name a generator, reported as such
    camera = " ".join(part for part in (make, model) if part)
    return _Finding(
        kind="camera",
        field="exif:Make" if make else "exif:Model",
        value=CAMERA_EXIF,
        summary=(
            f"EXIF names a camera ({_excerpt(camera, 80)}), weak evidence of a real photo "
            "because EXIF is easily forged"
        ),
        excerpt=_excerpt(camera),
    )


def _record(label: str, generator: str | None, text: str, model: str | None = None) -> _Finding:
    by = f"written by {generator}" if generator else "from an unidentified image generator"
    return _Finding(
        kind="generator-record",
        field=label,
        value=STRUCTURED_RECORD,
        summary=f"{_where(label)} holds generation settings {by}",
        generator=generator,
        excerpt=_excerpt(text),
        model=model,
    )


def _generator_name(text: str) -> str | None:
    head = text[:MAX_NAME_SEARCH_CHARS]
    return next((name for name, pattern in _GENERATOR_NAMES if pattern.search(head)), None)


def _json_object(text: str) -> dict[str, Any] | None:
    stripped = text.lstrip()
    if not stripped.startswith("{"):
        return None
    try:
        parsed = json.loads(stripped[:MAX_TEXT_CHARS])
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None


# -- Output ---------------------------------------------------------------------------------------


def _signal(findings: list[_Finding], notes: list[str]) -> Signal:
    if not findings:
        return Signal(NAME, NEUTRAL, WEIGHT, {"summary": NOTHING_FOUND, "findings": [], "notes": notes})
    # The strongest finding sets the value. Metadata findings are not independent (one tool wrote
    # them all), so adding them up would count the same evidence twice.
    strongest = max(findings, key=lambda finding: abs(finding.value - NEUTRAL))
    summary = strongest.summary
    if len(findings) > 1:
        others = len(findings) - 1
        summary += f" (and {others} more metadata finding{'s' if others > 1 else ''})"
    detail: dict[str, Any] = {"summary": summary}
    detail.update({key: item for key, item in strongest.as_dict().items() if key not in ("summary", "value")})
    detail["findings"] = [finding.as_dict() for finding in findings]
    detail["notes"] = notes
    return Signal(NAME, strongest.value, WEIGHT, detail)


def _key(label: str) -> str:
    return label.split(":", 1)[1].lower()


def _where(label: str) -> str:
    source, _, name = label.partition(":")
    if source == "png":
        return f"PNG text chunk '{name}'"
    if name == "comment":
        return f"{source.upper()} comment"
    return f"{source.upper()} field {name}"


def _excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    short = text[:limit].replace("\x00", "")
    return short + "…" if len(text) > limit else short
