from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from moderation.services.readiness import readiness
from moderation.views import admin_console, appeals, audit, console, console_queues, demo, metrics, victim


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    """200 when this process's match index is built and fresh and, with a broker, the broker answers and the
    scheduler's heartbeat is recent; 503 naming what is not (``services/readiness.py``)."""
    ready, body = readiness()
    return JsonResponse(body, status=200 if ready else 503)


console_patterns = ([
    path("", console.queue, name="queue"),
    path("next", console.next_case, name="next"),
    path("queue/decide", console.bulk_decide, name="bulk-decide"),
    path("case/<int:task_id>", console.case, name="case"),
    path("case/<int:task_id>/claim", console.claim, name="claim"),
    path("case/<int:task_id>/decide", console.decide, name="decide"),
    path("case/<int:task_id>/release", console.release, name="release"),
    path("case/<int:task_id>/escalate", console.escalate, name="escalate"),
    path("case/<int:task_id>/comment", console.comment, name="comment"),
    path("item/<int:item_id>/refetch", console.item_refetch, name="item-refetch"),
    path("proposal/<int:proposal_id>/confirm", console.proposal_confirm, name="proposal-confirm"),
    path("proposal/<int:proposal_id>/reject", console.proposal_reject, name="proposal-reject"),
    path("media/<int:media_id>", console.media_file, name="media"),
    path("media/<int:media_id>/reveal", console.media_reveal, name="media-reveal"),
    path("preferences", console.preferences, name="preferences"),
    path("exposure", console.exposure_page, name="exposure"),
    path("dashboard", console.dashboard, name="dashboard"),
    path("audit", audit.audit_log, name="audit"),
    path("audit.csv", audit.audit_csv, name="audit-csv"),
    path("templates", console.message_templates, name="templates"),
    # Queues and routing rules (admins), holds, escalation to a named senior, muted reporters: views/console_queues.py
    path("routing/", console_queues.routing, name="routing"),
    path("routing/rule/new", console_queues.rule_edit, name="routing-rule-new"),
    path("routing/rule/<int:rule_id>", console_queues.rule_edit, name="routing-rule"),
    path("routing/rule/<int:rule_id>/delete", console_queues.rule_delete, name="routing-rule-delete"),
    path("routing/queue/new", console_queues.queue_edit, name="routing-queue-new"),
    path("routing/queue/<int:queue_id>", console_queues.queue_edit, name="routing-queue"),
    path("case/<int:task_id>/hold", console_queues.hold, name="hold"),
    path("case/<int:task_id>/hold/lift", console_queues.hold_lift, name="hold-lift"),
    path("case/<int:task_id>/escalate-to", console_queues.escalate_to, name="escalate-to"),
    path("mutes", console_queues.mutes, name="mutes"),
    path("mutes/<int:mute_id>/unmute", console_queues.unmute, name="unmute"),
    path("case/<int:task_id>/mute-reporter", console_queues.mute_reporter, name="mute-reporter"),
    path("case/<int:task_id>/takedown-later", console_queues.takedown_later, name="takedown-later"),
    path("decision/<int:decision_id>/takedown-now", console_queues.takedown_now, name="takedown-now"),
], "console")

# A database that cannot be reached answers 503 + Retry-After, also when a middleware hits it.
handler500 = "moderation.db_unavailable.server_error"

urlpatterns = [
    path("", victim.home, name="home"),
    path("report/", victim.report_new, name="report-new"),
    path("status/", victim.status_lookup, name="status-lookup"),
    path("status/withdraw", victim.status_withdraw, name="status-withdraw"),
    path("status/complete", victim.status_complete, name="status-complete"),
    path("status/review", victim.status_review, name="status-review"),
    path("appeal/<str:token>/", victim.appeal_new, name="appeal-new"),
    path("console/appeals/", appeals.appeal_list, name="appeal-list"),
    path("console/appeals/<int:appeal_id>", appeals.appeal_detail, name="appeal-detail"),
    # The admin pages (banks, API keys, users): their own module and namespace (views/admin_console.py).
    # Partners and their keys: the exchange app's pages, included by name (moderation never imports exchange).
    path("console/admin/partners/", include("exchange.console")),
    path("console/admin/", include((admin_console.urlpatterns, "console_admin"))),
    path("console/", include(console_patterns)),
    path("demo/content/", demo.content_list, name="demo-list"),
    path("demo/content/<int:number>", demo.content_detail, name="demo-detail"),
    path("demo/content/<int:number>/file", demo.content_file, name="demo-file"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("moderation.api.urls")),
    # Meta's HMA routes for a platform switching from it (moderation/hma, docs/hma.md).
    path(settings.TAKEDOWN_HMA_PREFIX, include("moderation.hma.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
]
