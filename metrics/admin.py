from django.contrib import admin

from .models import Metric


@admin.register(Metric)
class MetricAdmin(admin.ModelAdmin):
    list_display = ("name", "metric_id", "category_type", "in_catalog", "updated_at")
    list_filter = ("category_type", "in_catalog")
    search_fields = ("name", "metric_id")
    readonly_fields = ("metric_id", "name", "category_type", "categories", "in_catalog")
