from django.urls import path

from exchange import api

urlpatterns = [
    path("hashes", api.HashesView.as_view(), name="api-exchange-hashes"),
    path("feedback", api.FeedbackView.as_view(), name="api-exchange-feedback"),
]
