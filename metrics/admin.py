from asgiref.sync import async_to_sync
from django.contrib import admin

from . import services
from .models import Metric


@admin.register(Metric)
class MetricAdmin(admin.ModelAdmin):
    list_display = ("name", "metric_id", "category_type", "in_catalog", "updated_at")
    list_filter = ("category_type", "in_catalog")
    search_fields = ("name", "metric_id")
    readonly_fields = ("metric_id", "name", "category_type", "categories", "in_catalog")

    def changelist_view(self, request, extra_context=None):
        # The upstream's status heads the metric list, in words an operator understands.
        health = async_to_sync(services.read_health)()
        return super().changelist_view(request, {**(extra_context or {}), "health": health})
