"""Pages of the built-in demo host platform, so a takedown can be seen to happen."""

from __future__ import annotations

from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from moderation.models import DemoContentItem


def content_list(request: HttpRequest) -> HttpResponse:
    return render(request, "demo/list.html", {"items": DemoContentItem.objects.all()})


def content_detail(request: HttpRequest, number: int) -> HttpResponse:
    item = get_object_or_404(DemoContentItem, number=number)
    status = 410 if item.status == DemoContentItem.Status.REMOVED else 200
    return render(request, "demo/detail.html", {"item": item}, status=status)


def content_file(request: HttpRequest, number: int) -> FileResponse:
    item = get_object_or_404(DemoContentItem, number=number)
    if item.status == DemoContentItem.Status.REMOVED:
        raise Http404("This content has been removed.")
    return FileResponse(item.file.open("rb"), content_type=item.mime)
