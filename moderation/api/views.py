"""API views: parse input, call one service or selector, shape the output."""

from __future__ import annotations

from typing import Any, cast

from django.conf import settings
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotAuthenticated, Throttled
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from moderation.api import serializers as s
from moderation.api.auth import ApiKeyAuthentication, FlaggerKeyAuthentication, HasFlaggerKey, HasPlatformKey
from moderation.api.parsers import JSONParser
from moderation.models import ApiKey, Report, ReviewTask
from moderation.roles import PERM_VIEW_QUEUE, require
from moderation.security.client import client_address
from moderation.security.ratelimit import ScopedRateThrottle
from moderation.selectors import queue as queue_selectors
from moderation.selectors import reporter as reporter_selectors
from moderation.services import claims, decisions
from moderation.services.intake import IntakeError, Notice, Upload, flagger_notice_submit, report_submit
from moderation.services.lockout import LookupLocked, report_lookup_limited
from moderation.services.scan import scan_as_dict, scan_submit, scan_ticket_for_key


def _read_upload(upload: Any, field: str) -> bytes:
    if upload.size > settings.TAKEDOWN_MAX_UPLOAD_BYTES:
        limit_mb = settings.TAKEDOWN_MAX_UPLOAD_BYTES // (1024 * 1024)
        raise IntakeError({field: [f"The file is larger than {limit_mb} MB; please send a smaller copy."]})
    return bytes(upload.read())


class ReportCreateView(APIView):
    """Submit a removal request (no account needed)."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "report"  # TAKEDOWN_RATE_LIMITS: per client address
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(request=s.ReportInput, responses={201: s.ReportCreated}, auth=[])
    def post(self, request: Request) -> Response:
        data = s.ReportInput(data=request.data)
        data.is_valid(raise_exception=True)
        uploads = [Upload(name=f.name or "", data=_read_upload(f, "files")) for f in data.validated_data["files"]]
        submitted = report_submit(notice=_notice(data, Report.Source.API), uploads=uploads)
        body = {"case_number": submitted.report.case_number, "pin": submitted.pin,
                "status": submitted.report.status}
        return Response(s.ReportCreated(body).data, status=status.HTTP_201_CREATED)


def _notice(data: s.ReportInput, source: str) -> Notice:
    v = data.validated_data
    return Notice(reporter_name=v["reporter_name"], reporter_email=v["reporter_email"],
                  relationship=v["relationship"], statement=v["statement"], good_faith=v["good_faith"],
                  signature=v["signature"], adult_confirmed=v["adult_confirmed"], locations=v["locations"],
                  source=source, context=data.context_fields(), client_hashes=v["client_hashes"])


class NoticeCreateView(APIView):
    """File a notice as a trusted flagger (DSA Art. 22) or eSafety, with a flagger key. Idempotent by
    ``reference``: 201 with the case the first time, 200 with the same case (no PIN) after that."""

    authentication_classes = [FlaggerKeyAuthentication]
    permission_classes = [HasFlaggerKey]
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(request=s.NoticeInput, responses={201: s.NoticeCreated, 200: s.NoticeCreated})
    def post(self, request: Request) -> Response:
        data = s.NoticeInput(data=request.data)
        data.is_valid(raise_exception=True)
        key = request.auth
        if not isinstance(key, ApiKey):  # HasFlaggerKey already refused this; for the type checker
            raise NotAuthenticated()
        uploads = [Upload(name=f.name or "", data=_read_upload(f, "files")) for f in data.validated_data["files"]]
        filed = flagger_notice_submit(api_key=key, reference=data.validated_data["reference"],
                                      notice=_notice(data, key.source), uploads=uploads)
        report = filed.report
        body = {"case_number": report.case_number, "pin": filed.pin, "status": report.status,
                "created": filed.created, "source": report.source, "deadline_at": report.deadline_at,
                "missing_information": report.missing_information}
        return Response(s.NoticeCreated(body).data,
                        status=status.HTTP_201_CREATED if filed.created else status.HTTP_200_OK)


class NoticeStatusView(APIView):
    """The status of a notice this key filed, by the sender's own reference."""

    authentication_classes = [FlaggerKeyAuthentication]
    permission_classes = [HasFlaggerKey]

    @extend_schema(responses={200: s.ReportStatus})
    def get(self, request: Request, reference: str) -> Response:
        key = request.auth if isinstance(request.auth, ApiKey) else None
        report = Report.objects.filter(flagger_key=key, flagger_reference=reference).first() if key else None
        if report is None:
            raise Http404("This key filed no notice with this reference.")
        return Response(s.ReportStatus(reporter_selectors.report_public_status(report)).data)


class ReportStatusView(APIView):
    """A report's status, for the reporter (send the PIN in the X-Case-Pin header)."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "lookup"  # on top of the per-case PIN lockout

    @extend_schema(parameters=[OpenApiParameter("X-Case-Pin", str, OpenApiParameter.HEADER, required=True)],
                   responses={200: s.ReportStatus}, auth=[])
    def get(self, request: Request, case_number: str) -> Response:
        try:  # failed PINs are counted per case and per client, then locked out (services/lockout.py)
            report = report_lookup_limited(case_number=case_number, pin=request.headers.get("X-Case-Pin", ""),
                                           client=client_address(request.META))
        except LookupLocked as exc:
            raise Throttled(wait=exc.retry_after, detail=str(exc)) from exc
        if report is None:
            raise Http404("No case matches this case number and PIN.")
        return Response(s.ReportStatus(reporter_selectors.report_public_status(report)).data)


class ScanView(APIView):
    """Check an upload against the hash banks and the synthetic-media score before it goes live."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasPlatformKey]
    parser_classes = [MultiPartParser]

    @extend_schema(request=s.ScanInput, responses={200: s.ScanTicketOutput},
                   parameters=[OpenApiParameter("detection", str, enum=["async", "inline"],
                                                description="Same as the form field; the form field wins.")])
    def post(self, request: Request) -> Response:
        form: Any = request.data
        fields = {"file": form.get("file"),
                  "detection": form.get("detection") or request.query_params.get("detection") or "async"}
        data = s.ScanInput(data=fields)
        data.is_valid(raise_exception=True)
        body = _read_upload(data.validated_data["file"], "file")
        api_key = cast(ApiKey, request.auth)  # HasPlatformKey
        ticket = scan_submit(data=body, api_key_id=api_key.pk, detection=data.validated_data["detection"])
        # scan_as_dict is the answer's shape already (ScanTicketOutput documents it): no serializer on the
        # hot path, where building one cost about 5 % of a scan.
        return Response(scan_as_dict(ticket))


class ScanResultView(APIView):
    """A scan's result with its detection score once a worker has computed it (the same platform key only)."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasPlatformKey]

    @extend_schema(responses={200: s.ScanTicketOutput})
    def get(self, request: Request, scan_id: str) -> Response:
        api_key = cast(ApiKey, request.auth)  # HasPlatformKey
        ticket = scan_ticket_for_key(scan_id=scan_id, api_key_id=api_key.pk)
        if ticket is None:
            raise Http404("No scan with this id was made with this key.")
        return Response(s.ScanTicketOutput(scan_as_dict(ticket)).data)


class QueueView(generics.ListAPIView):
    """Open cases in priority order."""

    permission_classes = [IsAuthenticated]
    serializer_class = s.TaskOutput

    def get_queryset(self) -> Any:
        require(self.request.user, PERM_VIEW_QUEUE, "see the review queue")
        state = self.request.query_params.get("state")
        if state and state not in ReviewTask.State.values:
            raise IntakeError({"state": [f"Use one of {', '.join(ReviewTask.State.values)}."]})
        return queue_selectors.queue_tasks(state=state)


class ClaimView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={200: s.TaskOutput})
    def post(self, request: Request, task_id: int) -> Response:
        if not ReviewTask.objects.filter(pk=task_id).exists():
            raise Http404("No such case.")
        task = claims.task_claim(task_id=task_id, user=request.user)
        return Response(s.TaskOutput(task).data)


class DecideView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=s.DecideInput, responses={200: s.DecisionOutput})
    def post(self, request: Request, task_id: int) -> Response:
        if not ReviewTask.objects.filter(pk=task_id).exists():
            raise Http404("No such case.")
        data = s.DecideInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        result = decisions.decision_make(task_id=task_id, user=request.user, outcome=v["decision"],
                                      reason=v["reason"], note=v["note"])
        result.decision.report.refresh_from_db()
        return Response(s.DecisionOutput({
            "decision_id": result.decision.pk, "outcome": result.decision.outcome,
            "reason": result.decision.reason, "actions": len(result.actions),
            "report_status": result.decision.report.status}).data)
