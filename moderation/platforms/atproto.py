"""Bluesky and any AT Protocol service: posts as locations, their images and video fetched from the author's PDS,
takedowns carried out through the operator's Ozone moderation service (docs/platforms.md, "AT Protocol").

Locations: ``at://<did or handle>/app.bsky.feed.post/<rkey>`` and the web app's post pages,
``https://bsky.app/profile/<handle or did>/post/<rkey>`` (the web app's hosts are ``TAKEDOWN_ATPROTO_WEB_HOSTS``).
``normalise`` needs no network: a handle stays a handle (lower case) until the fetch resolves it, and the fetched
media carry the canonical ``at://<did>/app.bsky.feed.post/<rkey>``, which the case keeps from then on.

Fetching: the handle is resolved to a DID (``com.atproto.identity.resolveHandle`` at the AppView), the DID to its
PDS (the PLC directory for ``did:plc``, ``/.well-known/did.json`` for ``did:web``), the post record is read from
the PDS (``com.atproto.repo.getRecord``) and each image or video blob downloaded from it
(``com.atproto.sync.getBlob``). Every request goes through the one safe fetcher: a PDS is allowed because the
author's DID document names it (narrowed to ``TAKEDOWN_ATPROTO_PDS_HOSTS`` when set), and its address must be
public all the same.

Enforcing: a removal is an Ozone ``modEventTakedown`` on the post and its blobs; Ozone passes it on to the PDS
(which stops serving the record and blobs) and the AppView (which stops returning the post). A restoration is a
``modEventReverseTakedown``. Ozone is the default, and the only enforcement path, because it is where an AT
Protocol moderation team already works: the event sits in the subject's history beside the team's own, the
report it answers is closed there, and Ozone propagates to every service it is configured for, where the PDS
admin API would reach one PDS and leave the AppView serving the post. The statement of reasons goes in the
event's comment (the decision's ground and legal basis; no personal data) and the idempotency key in its
``externalId``.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register
from django.core.exceptions import ImproperlyConfigured

from moderation.env import parse_networks
from moderation.platforms.base import (
    ContentGone,
    ContentNotFound,
    ContentUnfetchable,
    FetchedMedia,
    LocationRejected,
    PlatformRefused,
)
from moderation.platforms.fetch import FetchPolicy, SafeFetcher
from moderation.platforms.locations import host_canonical, host_matches

POST_COLLECTION = "app.bsky.feed.post"
DID_RE = re.compile(r"^did:(plc:[a-z2-7]{24}|web:[a-zA-Z0-9.%:-]{1,253})$")
HANDLE_RE = re.compile(r"^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]([a-zA-Z0-9-]{0,61}"
                       r"[a-zA-Z0-9])?$")
RKEY_RE = re.compile(r"^[A-Za-z0-9._:~-]{1,512}$")
AT_URI_RE = re.compile(r"^at://(?P<repo>[^/?#]+)/(?P<collection>[^/?#]+)/(?P<rkey>[^/?#]+)/?$")
WEB_PATH_RE = re.compile(r"^/profile/(?P<repo>[^/]+)/post/(?P<rkey>[^/]+)/?$")
MAX_MEDIA = 10  # four images, or one video, in the app's own lexicon; a little room for others
TAKEDOWN = "tools.ozone.moderation.defs#modEventTakedown"
REVERSE_TAKEDOWN = "tools.ozone.moderation.defs#modEventReverseTakedown"
ACKNOWLEDGE = "tools.ozone.moderation.defs#modEventAcknowledge"
COMMENT_MAX = 2000
REMOVED_NOTE = "Thank you for your report. The content you reported has been removed."
# XRPC error names that mean "nothing there" and "removed by the service".
NOT_FOUND_ERRORS = {"RecordNotFound", "RepoNotFound", "NotFound"}
GONE_ERRORS = {"RepoTakendown", "RepoDeactivated", "RepoSuspended", "AccountTakedown", "AccountDeactivated"}


@dataclass(frozen=True)
class PostRef:
    """A post: its author (a DID, or a handle not yet resolved) and record key."""

    repo: str
    rkey: str

    @property
    def uri(self) -> str:
        return f"at://{self.repo}/{POST_COLLECTION}/{self.rkey}"

    @property
    def resolved(self) -> bool:
        return self.repo.startswith("did:")


def parse_post(location: str) -> PostRef:
    """The post a canonical location (``at://...``) names; ``LocationRejected`` if it names none."""
    match = AT_URI_RE.match(location.strip())
    if not match or match["collection"] != POST_COLLECTION:
        raise LocationRejected(f"{location[:200]!r} is not the at:// address of a post.")
    return PostRef(_repo(match["repo"]), _rkey(match["rkey"]))


def _repo(text: str) -> str:
    if text.startswith("did:"):
        if not DID_RE.match(text):
            raise LocationRejected(f"{text[:100]!r} is not a DID that Takedown can resolve (did:plc or did:web).")
        return text
    handle = text.lower().lstrip("@")
    if not HANDLE_RE.match(handle):
        raise LocationRejected(f"{text[:100]!r} is neither a handle (name.bsky.social) nor a DID.")
    return handle


def _rkey(text: str) -> str:
    if not RKEY_RE.match(text) or text in (".", ".."):
        raise LocationRejected(f"{text[:100]!r} is not a post's record key.")
    return text


@dataclass
class AtprotoPlatform:
    """The ``atproto`` content source and enforcer (``TAKEDOWN_PLATFORM=atproto``, ``TAKEDOWN_ENFORCER=atproto``)."""

    appview_url: str
    plc_url: str
    web_hosts: tuple[str, ...]
    pds_hosts: tuple[str, ...] = ()
    ozone_url: str = ""
    ozone_did: str = ""
    ozone_admin_password: str = ""
    moderator_did: str = ""
    service_networks: tuple[Any, ...] = ()  # private networks the operator's own services may sit in
    name: str = "atproto"
    _fetchers: dict[str, SafeFetcher] = field(default_factory=dict, init=False, repr=False)

    @classmethod
    def from_settings(cls) -> AtprotoPlatform:
        appview = _service_url(settings.TAKEDOWN_ATPROTO_APPVIEW_URL, "TAKEDOWN_ATPROTO_APPVIEW_URL")
        plc = _service_url(settings.TAKEDOWN_ATPROTO_PLC_URL, "TAKEDOWN_ATPROTO_PLC_URL")
        try:
            web_hosts = tuple(host_canonical(host) for host in settings.TAKEDOWN_ATPROTO_WEB_HOSTS)
            FetchPolicy(hosts=tuple(settings.TAKEDOWN_ATPROTO_PDS_HOSTS))  # checks the patterns
        except ValueError as exc:
            raise ImproperlyConfigured(f"TAKEDOWN_ATPROTO_WEB_HOSTS / _PDS_HOSTS: {exc}") from exc
        ozone = settings.TAKEDOWN_ATPROTO_OZONE_URL
        if ozone:
            ozone = _service_url(ozone, "TAKEDOWN_ATPROTO_OZONE_URL")
            if not DID_RE.match(settings.TAKEDOWN_ATPROTO_OZONE_DID or ""):
                raise ImproperlyConfigured("TAKEDOWN_ATPROTO_OZONE_URL needs TAKEDOWN_ATPROTO_OZONE_DID, the "
                                           "moderation service's DID (did:plc:...).")
            if not settings.TAKEDOWN_ATPROTO_OZONE_ADMIN_PASSWORD:
                raise ImproperlyConfigured("TAKEDOWN_ATPROTO_OZONE_URL needs TAKEDOWN_ATPROTO_OZONE_ADMIN_PASSWORD (or "
                                           "_FILE): Ozone's OZONE_ADMIN_PASSWORD.")
        return cls(appview_url=appview, plc_url=plc, web_hosts=web_hosts,
                   pds_hosts=tuple(settings.TAKEDOWN_ATPROTO_PDS_HOSTS), ozone_url=ozone,
                   ozone_did=settings.TAKEDOWN_ATPROTO_OZONE_DID, ozone_admin_password=
                   settings.TAKEDOWN_ATPROTO_OZONE_ADMIN_PASSWORD,
                   moderator_did=settings.TAKEDOWN_ATPROTO_MODERATOR_DID or settings.TAKEDOWN_ATPROTO_OZONE_DID,
                   service_networks=tuple(parse_networks("TAKEDOWN_ATPROTO_SERVICE_NETWORKS", [
                       str(network) for network in settings.TAKEDOWN_ATPROTO_SERVICE_NETWORKS])))

    # --- ContentSource ---

    def describe(self) -> str:
        host = self.web_hosts[0] if self.web_hosts else "bsky.app"
        return (f"links to posts, like https://{host}/profile/name.bsky.social/post/3k2a4b5c6d7e8, or their "
                "at:// address")

    def normalise(self, location: str) -> str:
        text = location.strip()
        if text.lower().startswith("at://"):
            try:
                return parse_post("at://" + text[5:]).uri
            except LocationRejected as exc:
                raise LocationRejected(f"{exc} We can act on {self.describe()}.") from None
        try:
            parts = urlsplit(text)
            host = host_canonical(parts.hostname or "")
            parts.port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError:
            raise LocationRejected(f"This is not a web address: we can act on {self.describe()}.") from None
        page = WEB_PATH_RE.match(parts.path)
        if parts.scheme.lower() not in ("http", "https") or not any(host_matches(host, h) for h in self.web_hosts):
            raise LocationRejected(f"It is not on this platform: we can act on {self.describe()}.")
        if page is None:
            raise LocationRejected(f"This is not a link to a post: we can act on {self.describe()}.")
        try:
            return PostRef(_repo(page["repo"]), _rkey(page["rkey"])).uri
        except LocationRejected as exc:
            raise LocationRejected(f"{exc} We can act on {self.describe()}.") from None

    def fetch(self, location: str) -> list[FetchedMedia]:
        post = self.resolve(parse_post(self.normalise(location)))
        pds = self.pds_of(post.repo)
        record = self._pds_call(pds, "com.atproto.repo.getRecord",
                                {"repo": post.repo, "collection": POST_COLLECTION, "rkey": post.rkey})
        value = record.get("value") if isinstance(record, dict) else None
        if not isinstance(value, dict):
            raise ContentUnfetchable("the PDS's answer for the post has no record value")
        cids = post_media_cids(value)
        if not cids:
            raise ContentUnfetchable("the post has no images or video")
        posted_at = parse_time(value.get("createdAt"))
        uploader = self._uploader(post.repo, pds)
        fetched: list[FetchedMedia] = []
        try:
            for cid in cids[:MAX_MEDIA]:
                url = f"{pds}/xrpc/com.atproto.sync.getBlob?{urlencode({'did': post.repo, 'cid': cid})}"
                fetched.append(self._translated(lambda url=url: self._fetcher(pds).download(
                    url, location=post.uri, uploader=uploader, posted_at=posted_at)))
        except BaseException:
            for done in fetched:
                done.discard()
            raise
        return fetched

    # --- Enforcer ---

    def remove(self, *, location: str, reason: str, idempotency_key: str,
               statement: dict[str, Any] | None = None) -> None:
        subject, blobs = self._subject(location)
        status = self.ozone_status(subject["uri"])
        if status and status.get("takendown"):
            return  # already down (by us or by the team in Ozone): removing it again changes nothing
        comment = _comment("Taken down by Takedown", reason, statement)
        # Every open report on the post is answered by its removal (Ozone's report queue closes them).
        self._emit({"$type": TAKEDOWN, "comment": comment}, subject, blobs, idempotency_key,
                   report_action={"all": True, "note": REMOVED_NOTE})

    def restore(self, *, location: str, reason: str, idempotency_key: str) -> None:
        subject, blobs = self._subject(location)
        status = self.ozone_status(subject["uri"])
        if status is not None and not status.get("takendown"):
            return  # live already
        comment = _comment("Restored by Takedown", reason, None)
        self._emit({"$type": REVERSE_TAKEDOWN, "comment": comment}, subject, blobs, idempotency_key)

    def uploader_contact(self, location: str) -> str | None:
        return None  # AT Protocol accounts have no public email; the PDS operator notifies its own users

    # --- Ozone ---

    def acknowledge(self, *, uri: str, cid: str, comment: str, idempotency_key: str, report_types: list[str],
                    note: str) -> None:
        """Close the reports of ``report_types`` on a post in Ozone without taking it down (a case closed without
        removal); ``note`` is what Ozone may tell their reporters. Reports the team closed already stay closed."""
        subject = {"$type": "com.atproto.repo.strongRef", "uri": uri, "cid": cid}
        try:
            self._emit({"$type": ACKNOWLEDGE, "comment": comment[:COMMENT_MAX]}, subject, [], idempotency_key,
                       report_action={"types": sorted(set(report_types)), "note": note[:COMMENT_MAX]})
        except PlatformRefused as exc:
            if "no matching reports" not in _xrpc_message(exc).lower():
                raise
            # None of those reports is open any more (the team closed them): the subject's review is closed still.
            self._emit({"$type": ACKNOWLEDGE, "comment": comment[:COMMENT_MAX]}, subject, [], idempotency_key)

    def ozone_query(self, method: str, params: dict[str, Any]) -> Any:
        return self._ozone("GET", method, params=params)

    def _emit(self, event: dict[str, Any], subject: dict[str, Any], blobs: list[str], idempotency_key: str,
              report_action: dict[str, Any] | None = None) -> None:
        body: dict[str, Any] = {"event": event, "subject": subject, "createdBy": self.moderator_did,
                                "externalId": idempotency_key[:200]}
        if blobs:
            body["subjectBlobCids"] = blobs
        if report_action:
            body["reportAction"] = report_action
        try:
            self._ozone("POST", "tools.ozone.moderation.emitEvent", body=body)
        except PlatformRefused as exc:
            if _xrpc_error(exc) == "DuplicateExternalId":
                return  # this very request was carried out before (a retry after a lost answer)
            raise

    def ozone_status(self, uri: str) -> dict[str, Any] | None:
        """Ozone's status of the subject (``takendown``, ``reviewState``, ...), or None if it has none."""
        answer = self._ozone("GET", "tools.ozone.moderation.queryStatuses", params={"subject": uri, "limit": 1})
        statuses = answer.get("subjectStatuses") if isinstance(answer, dict) else None
        return statuses[0] if statuses else None

    def _subject(self, location: str) -> tuple[dict[str, Any], list[str]]:
        """The strong reference to the post and its blobs' CIDs, as Ozone sees the post (it keeps the record of a
        post that is down, so a restoration finds it)."""
        post = self.resolve(parse_post(self.normalise(location)))
        try:
            record = self._ozone("GET", "tools.ozone.moderation.getRecord", params={"uri": post.uri})
        except ContentNotFound:
            record = None
        if isinstance(record, dict) and record.get("cid"):
            blobs = [b["cid"] for b in record.get("blobs") or [] if isinstance(b, dict) and b.get("cid")]
            return ({"$type": "com.atproto.repo.strongRef", "uri": post.uri, "cid": record["cid"]},
                    blobs or post_media_cids(_mapping(record.get("value"))))
        pds = self.pds_of(post.repo)
        found = self._pds_call(pds, "com.atproto.repo.getRecord",
                               {"repo": post.repo, "collection": POST_COLLECTION, "rkey": post.rkey})
        found = _mapping(found)
        return ({"$type": "com.atproto.repo.strongRef", "uri": post.uri, "cid": str(found.get("cid", ""))},
                post_media_cids(_mapping(found.get("value"))))

    def _ozone(self, method: str, nsid: str, *, params: dict[str, Any] | None = None,
               body: dict[str, Any] | None = None) -> Any:
        if not self.ozone_url:
            raise ImproperlyConfigured("The atproto enforcer needs TAKEDOWN_ATPROTO_OZONE_URL (docs/platforms.md).")
        url = f"{self.ozone_url}/xrpc/{nsid}" + (f"?{urlencode(params, doseq=True)}" if params else "")
        token = base64.b64encode(f"admin:{self.ozone_admin_password}".encode()).decode()
        headers = {"Authorization": f"Basic {token}"}
        data = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        return self._translated(lambda: self._service(self.ozone_url).call_json(method, url, body=data,
                                                                                 headers=headers))

    # --- identity ---

    def resolve(self, post: PostRef) -> PostRef:
        """The post with its author's DID (a handle is resolved at the AppView)."""
        if post.resolved:
            return post
        url = f"{self.appview_url}/xrpc/com.atproto.identity.resolveHandle?{urlencode({'handle': post.repo})}"
        try:
            answer = self._translated(lambda: self._service(self.appview_url).call_json("GET", url))
        except PlatformRefused as exc:
            if _xrpc_error(exc) == "InvalidRequest" and "resolve handle" in _xrpc_message(exc).lower():
                raise ContentNotFound(f"no account has the handle {post.repo}") from exc
            raise
        did = answer.get("did") if isinstance(answer, dict) else None
        if not isinstance(did, str) or not DID_RE.match(did):
            raise ContentUnfetchable(f"the handle {post.repo} did not resolve to a DID")
        return PostRef(did, post.rkey)

    def pds_of(self, did: str) -> str:
        """The URL of the PDS that hosts ``did``'s repository, from its DID document."""
        if did.startswith("did:plc:"):
            document = self._translated(lambda: self._service(self.plc_url).call_json(
                "GET", f"{self.plc_url}/{quote(did)}"))
        else:
            host = did.removeprefix("did:web:").replace("%3A", ":")
            url = f"https://{host}/.well-known/did.json"
            document = self._translated(lambda: self._fetcher(url).call_json("GET", url))
        services = document.get("service") if isinstance(document, dict) else None
        for service in services or []:
            if isinstance(service, dict) and str(service.get("id", "")).endswith("#atproto_pds") \
                    and isinstance(service.get("serviceEndpoint"), str):
                endpoint = service["serviceEndpoint"].rstrip("/")
                parts = urlsplit(endpoint)
                if parts.scheme in ("https", "http") and parts.hostname:
                    if self.pds_hosts and not FetchPolicy(hosts=self.pds_hosts).allows_host(parts.hostname):
                        raise ContentUnfetchable(f"the author's PDS {parts.hostname} is not one of "
                                                 "TAKEDOWN_ATPROTO_PDS_HOSTS")
                    return endpoint
        raise ContentUnfetchable(f"the DID document of {did} names no PDS")

    def _uploader(self, did: str, pds: str) -> str:
        try:
            answer = self._pds_call(pds, "com.atproto.repo.describeRepo", {"repo": did})
        except (ContentNotFound, ContentUnfetchable, PlatformRefused):
            return did
        handle = answer.get("handle") if isinstance(answer, dict) else None
        return f"{did} @{handle}"[:200] if isinstance(handle, str) and HANDLE_RE.match(handle) else did

    # --- requests ---

    def _pds_call(self, pds: str, nsid: str, params: dict[str, str]) -> Any:
        url = f"{pds}/xrpc/{nsid}?{urlencode(params)}"
        return self._translated(lambda: self._fetcher(pds).call_json("GET", url))

    def _fetcher(self, url: str) -> SafeFetcher:
        """The safe fetcher for a host that the network named (a PDS, a did:web host): public addresses only
        (or ``TAKEDOWN_FETCH_ALLOW_NETWORKS``)."""
        host = urlsplit(url).hostname or ""
        if host not in self._fetchers:
            self._fetchers[host] = SafeFetcher(FetchPolicy.from_settings([host]), purpose="platform atproto")
        return self._fetchers[host]

    def _service(self, url: str) -> SafeFetcher:
        """The safe fetcher for one of the operator's own services (Ozone, the AppView, the PLC directory), which
        may also sit in ``TAKEDOWN_ATPROTO_SERVICE_NETWORKS``: a private Ozone does not open the private
        network to fetches of reported content."""
        host = urlsplit(url).hostname or ""
        key = f"service:{host}"
        if key not in self._fetchers:
            policy = FetchPolicy.from_settings([host])
            policy = replace(policy, allow_networks=policy.allow_networks + tuple(self.service_networks))
            self._fetchers[key] = SafeFetcher(policy, purpose="platform atproto")
        return self._fetchers[key]

    @staticmethod
    def _translated(call: Any) -> Any:
        """XRPC errors by name: a record or blob not there is ContentNotFound; an account taken down or
        deactivated, ContentGone."""
        try:
            return call()
        except PlatformRefused as exc:
            error, message = _xrpc_error(exc), _xrpc_message(exc)
            if error in GONE_ERRORS:
                raise ContentGone(f"the service says the account is not available ({error})") from exc
            if error == "BlobNotFound" or (error == "InvalidRequest" and message.lower() == "blob not found"):
                # A PDS answers so for a blob it took down as well as for one it never had; the post that names
                # the blob exists, so it was there and has been removed.
                raise ContentGone("the PDS no longer serves this image or video (taken down or deleted)") from exc
            if error in NOT_FOUND_ERRORS or (error == "InvalidRequest" and "locate record" in message.lower()):
                raise ContentNotFound(f"the service has no such content ({error})") from exc
            raise


def post_media_cids(record: dict[str, Any]) -> list[str]:
    """The CIDs of the images and video a post record embeds (``app.bsky.embed.images``, ``.video`` and
    ``.recordWithMedia``), in order, each once."""
    embed = record.get("embed")
    if isinstance(embed, dict) and embed.get("$type") == "app.bsky.embed.recordWithMedia":
        embed = embed.get("media")
    found: list[str] = []
    if not isinstance(embed, dict):
        return found
    kind = embed.get("$type")
    blobs: list[Any] = []
    if kind == "app.bsky.embed.images":
        blobs = [image.get("image") for image in embed.get("images") or [] if isinstance(image, dict)]
    elif kind == "app.bsky.embed.video":
        blobs = [embed.get("video")]
    for blob in blobs:
        cid = blob_cid(blob)
        if cid and cid not in found:
            found.append(cid)
    return found


def blob_cid(blob: Any) -> str:
    """The CID of a blob reference, in its JSON form (``{"ref": {"$link": cid}}``) or the legacy one (``cid``)."""
    if not isinstance(blob, dict):
        return ""
    ref = blob.get("ref")
    cid = ref.get("$link") if isinstance(ref, dict) else blob.get("cid")
    return cid if isinstance(cid, str) and re.fullmatch(r"[a-z0-9]{8,120}", cid) else ""


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _xrpc_error(exc: PlatformRefused) -> str:
    try:
        error = json.loads(exc.body).get("error")
    except (ValueError, AttributeError):
        return ""
    return error if isinstance(error, str) else ""


def _xrpc_message(exc: PlatformRefused) -> str:
    try:
        message = json.loads(exc.body).get("message")
    except (ValueError, AttributeError):
        return ""
    return message if isinstance(message, str) else ""


def _comment(headline: str, reason: str, statement: dict[str, Any] | None) -> str:
    """The event's comment: the decision's ground and, with a statement of reasons, its legal basis and facts.
    Statements carry no personal data (moderation/services/dsa.py); nothing else is added here."""
    lines = [f"{headline}: {reason}"]
    for key in ("decision_ground", "illegal_content_legal_ground", "incompatible_content_ground",
                "decision_facts", "category"):
        value = (statement or {}).get(key)
        if isinstance(value, str) and value:
            lines.append(f"{key.replace('_', ' ')}: {value}")
    return "\n".join(lines)[:COMMENT_MAX]


def parse_time(value: Any) -> datetime | None:
    """An AT Protocol datetime (RFC 3339, ``Z`` or an offset) as an aware datetime; None if it is not one."""
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _service_url(url: str, setting: str) -> str:
    parts = urlsplit(url or "")
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ImproperlyConfigured(f"{setting} must be an https:// URL (http:// for testing); got {url!r}.")
    return url.rstrip("/")


@register(Tags.security)
def atproto_settings_check(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """With the atproto platform or enforcer, its settings must be usable (``manage.py check``)."""
    if "atproto" not in (settings.TAKEDOWN_PLATFORM, settings.TAKEDOWN_ENFORCER):
        return []
    try:
        platform = AtprotoPlatform.from_settings()
        if settings.TAKEDOWN_ENFORCER == "atproto" and not platform.ozone_url:
            raise ImproperlyConfigured("TAKEDOWN_ENFORCER=atproto takes posts down through Ozone: set "
                                       "TAKEDOWN_ATPROTO_OZONE_URL, _OZONE_DID and _OZONE_ADMIN_PASSWORD.")
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="takedown.E103")]
    return []
