from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from moderation.views import console, demo, victim


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


console_patterns = ([
    path("", console.queue, name="queue"),
    path("next", console.next_case, name="next"),
    path("case/<int:task_id>", console.case, name="case"),
    path("case/<int:task_id>/claim", console.claim, name="claim"),
    path("case/<int:task_id>/decide", console.decide, name="decide"),
    path("media/<int:media_id>", console.media_file, name="media"),
], "console")

urlpatterns = [
    path("", victim.home, name="home"),
    path("report/", victim.report_new, name="report-new"),
    path("status/", victim.status_lookup, name="status-lookup"),
    path("console/", include(console_patterns)),
    path("demo/content/", demo.content_list, name="demo-list"),
    path("demo/content/<int:number>", demo.content_detail, name="demo-detail"),
    path("demo/content/<int:number>/file", demo.content_file, name="demo-file"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("moderation.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("healthz", healthz, name="healthz"),
]
