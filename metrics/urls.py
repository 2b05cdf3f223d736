from django.urls import path

from metrics import views

urlpatterns = [
    path("", views.home, name="home"),
    path("boards/all/", views.all_metrics_board, name="all-metrics"),
    path("health/", views.health, name="health"),
]
