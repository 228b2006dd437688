"""API views: parse input, call one service or selector, shape the output."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from moderation import selectors
from moderation.api import serializers as s
from moderation.api.auth import ApiKeyAuthentication, HasPlatformKey
from moderation.models import ApiKey, Report, ReviewTask
from moderation.services import review
from moderation.services.intake import IntakeError, Notice, Upload, report_submit
from moderation.services.scan import scan_media


def _read_upload(upload: Any, field: str) -> bytes:
    if upload.size > settings.TAKEDOWN_MAX_UPLOAD_BYTES:
        limit_mb = settings.TAKEDOWN_MAX_UPLOAD_BYTES // (1024 * 1024)
        raise IntakeError({field: [f"The file is larger than {limit_mb} MB; please send a smaller copy."]})
    return bytes(upload.read())


class ReportCreateView(APIView):
    """Submit a removal request (no account needed)."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(request=s.ReportInput, responses={201: s.ReportCreated}, auth=[])
    def post(self, request: Request) -> Response:
        data = s.ReportInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        uploads = [Upload(name=f.name or "", data=_read_upload(f, "files")) for f in v["files"]]
        submitted = report_submit(
            notice=Notice(reporter_name=v["reporter_name"], reporter_email=v["reporter_email"],
                          relationship=v["relationship"], statement=v["statement"], good_faith=v["good_faith"],
                          signature=v["signature"], adult_confirmed=v["adult_confirmed"],
                          locations=v["locations"], source=Report.Source.API),
            uploads=uploads,
        )
        body = {"case_number": submitted.report.case_number, "pin": submitted.pin,
                "status": submitted.report.status}
        return Response(s.ReportCreated(body).data, status=status.HTTP_201_CREATED)


class ReportStatusView(APIView):
    """A report's status, for the reporter (send the PIN in the X-Case-Pin header)."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(parameters=[OpenApiParameter("X-Case-Pin", str, OpenApiParameter.HEADER, required=True)],
                   responses={200: s.ReportStatus}, auth=[])
    def get(self, request: Request, case_number: str) -> Response:
        from rest_framework.exceptions import Throttled

        from moderation.services.lockout import LookupLocked, client_address, report_lookup_limited

        try:  # failed PINs are counted per case and per client, then locked out (services/lockout.py)
            report = report_lookup_limited(case_number=case_number, pin=request.headers.get("X-Case-Pin", ""),
                                           client=client_address(request.META))
        except LookupLocked as exc:
            raise Throttled(wait=exc.retry_after, detail=str(exc)) from exc
        if report is None:
            raise Http404("No case matches this case number and PIN.")
        return Response(s.ReportStatus(selectors.report_public_status(report)).data)


class ScanView(APIView):
    """Check an upload against the hash banks and the synthetic-media score before it goes live."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasPlatformKey]
    parser_classes = [MultiPartParser]

    @extend_schema(request=s.ScanInput, responses={200: s.ScanOutput})
    def post(self, request: Request) -> Response:
        data = s.ScanInput(data=request.data)
        data.is_valid(raise_exception=True)
        body = _read_upload(data.validated_data["file"], "file")
        api_key = request.auth if isinstance(request.auth, ApiKey) else None
        result = scan_media(data=body, api_key_id=api_key.pk if api_key else None)
        return Response(s.ScanOutput(result.as_dict()).data)


class QueueView(generics.ListAPIView):
    """Open cases in priority order."""

    permission_classes = [IsAuthenticated]
    serializer_class = s.TaskOutput

    def get_queryset(self) -> Any:
        from moderation.services.roles import PERM_VIEW_QUEUE, require

        require(self.request.user, PERM_VIEW_QUEUE, "see the review queue")
        state = self.request.query_params.get("state")
        if state and state not in ReviewTask.State.values:
            raise IntakeError({"state": [f"Use one of {', '.join(ReviewTask.State.values)}."]})
        return selectors.queue_tasks(state=state)


class ClaimView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={200: s.TaskOutput})
    def post(self, request: Request, task_id: int) -> Response:
        if not ReviewTask.objects.filter(pk=task_id).exists():
            raise Http404("No such case.")
        task = review.task_claim(task_id=task_id, user=request.user)
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
        result = review.decision_make(task_id=task_id, user=request.user, outcome=v["decision"],
                                      reason=v["reason"], note=v["note"])
        result.decision.report.refresh_from_db()
        return Response(s.DecisionOutput({
            "decision_id": result.decision.pk, "outcome": result.decision.outcome,
            "reason": result.decision.reason, "actions": len(result.actions),
            "report_status": result.decision.report.status}).data)
