from django.urls import include, path

from moderation.api import views

urlpatterns = [
    path("reports", views.ReportCreateView.as_view(), name="api-report-create"),
    path("reports/<str:case_number>", views.ReportStatusView.as_view(), name="api-report-status"),
    path("scan", views.ScanView.as_view(), name="api-scan"),
    path("scan/<str:scan_id>", views.ScanResultView.as_view(), name="api-scan-result"),
    path("notices", views.NoticeCreateView.as_view(), name="api-notice-create"),
    path("notices/<str:reference>", views.NoticeStatusView.as_view(), name="api-notice-status"),
    path("queue", views.QueueView.as_view(), name="api-queue"),
    path("queue/<int:task_id>/claim", views.ClaimView.as_view(), name="api-claim"),
    path("queue/<int:task_id>/decide", views.DecideView.as_view(), name="api-decide"),
    path("exchange/", include("exchange.urls")),
]
