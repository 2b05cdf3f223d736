from django import forms
from django.utils import timezone

from dashboard import access, webhooks
from metrics.models import AlertRule, Metric, Widget


class AlertRuleForm(forms.ModelForm):
    """A rule on a metric and category the user may see, and nothing else. The metric goes by
    its upstream id: static/metrics/alert_form.js fills both selects from the catalog."""

    PICKED = ("metric", "category")

    metric = forms.ModelChoiceField(Metric.objects.none(), to_field_name="metric_id")
    webhook_url = forms.URLField(required=False, assume_scheme="https")

    class Meta:
        model = AlertRule
        fields = [
            "name",
            "metric",
            "category",
            "direction",
            "threshold",
            "for_seconds",
            "cooldown_minutes",
            "quiet_start",
            "quiet_end",
            "email",
            "webhook_url",
        ]
        widgets = {
            "quiet_start": forms.TimeInput(attrs={"type": "time"}),
            "quiet_end": forms.TimeInput(attrs={"type": "time"}),
        }

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.scope = access.live_scope(user) or access.Scope(frozenset())
        self.fields["metric"].queryset = access.visible_metrics(self.scope)
        zone = timezone.get_current_timezone_name()
        self.fields["quiet_start"].help_text = f"No alerts from ({zone})…"
        self.fields["quiet_end"].help_text = f"…until ({zone})."

    def other_fields(self):
        """The fields the template draws as they are (the picked ones it draws itself)."""
        return [field for field in self if field.name not in self.PICKED]

    def clean_webhook_url(self) -> str:
        url = self.cleaned_data["webhook_url"]
        if url:
            try:
                webhooks.check_url(url)
            except webhooks.Refused as exc:
                raise forms.ValidationError(str(exc)) from exc
        return url

    def clean(self):
        data = super().clean()
        metric, category = data.get("metric"), data.get("category", "")
        if metric is not None:
            if error := category_error(metric, category):
                self.add_error("category", error)
            elif not self.scope.allows(category):
                self.add_error("category", "That queue or agent is not in your team.")
        return data


def category_error(metric: Metric | None, category: str) -> str | None:
    """Why `category` is no category of `metric` as the upstream lists it (None: it is)."""
    if metric is None or metric.category_type == "NONE":
        return None
    if category not in metric.categories:
        name = metric.name or metric.metric_id
        return f"{name} has no category {category!r} (not listed by the server)."
    return None


# A widget's metrics and their categories (chosen with the pickers).
WIDGET_SOURCES = (
    ("wait_metric", "wait_category"),
    ("queue_metric", "queue_category"),
    ("agents_metric", "agents_category"),
)
# The designer's fieldsets (the metrics and categories have their own, with the pickers).
FIELD_GROUPS = {
    "wording": [
        "text_open",
        "text_high_demand",
        "text_closed",
        "text_unknown",
        "text_under_a_minute",
        "text_minutes",
        "text_one_caller",
        "text_callers",
        "lang",
    ],
    "rules": ["high_demand_seconds", "min_calls", "round_to_minutes", "max_age_seconds"],
    "look": list(Widget.STYLE_FIELDS),
    "embedding": ["allowed_origins", "public"],
}


class WidgetForm(forms.ModelForm):
    """A widget as the widget designer edits it: metrics chosen by id from the catalog (the
    picker fills the selects), each category one the upstream lists for its metric."""

    wait_metric = forms.ModelChoiceField(Metric.objects.all(), to_field_name="metric_id")
    queue_metric = forms.ModelChoiceField(
        Metric.objects.all(), to_field_name="metric_id", required=False
    )
    agents_metric = forms.ModelChoiceField(
        Metric.objects.all(), to_field_name="metric_id", required=False
    )

    class Meta:
        model = Widget
        fields = [
            "name",
            "slug",
            *(field for source in WIDGET_SOURCES for field in source),
            *(field for group in FIELD_GROUPS.values() for field in group),
        ]
        widgets = {
            **{
                field: forms.TextInput(attrs={"type": "color"})
                for field in Widget.STYLE_FIELDS
                if field.startswith("color_")
            },
            "allowed_origins": forms.Textarea(attrs={"rows": 3}),
        }
        labels = {
            "slug": "Address (its URL's last part)",
            "text_open": "When open",
            "text_high_demand": "In high demand",
            "text_closed": "When closed",
            "text_unknown": "When unknown",
            "text_under_a_minute": "A wait under a minute",
            "text_minutes": "A wait in minutes",
            "text_one_caller": "One caller",
            "text_callers": "Several callers",
            "lang": "Language (e.g. en, es)",
            "color_text": "Text colour",
            "color_background": "Background",
            "color_open": "Open",
            "color_high_demand": "High demand",
            "color_closed": "Closed or unknown",
            "font_size": "Font size",
            "corner_radius": "Corner radius",
            "public": "Any site may embed it",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The pickers choose metrics by their upstream id, not by our row's primary key.
        for metric_field, _ in WIDGET_SOURCES:
            metric = getattr(self.instance, metric_field, None) if self.instance.pk else None
            if metric is not None:
                self.initial[metric_field] = metric.metric_id

    def clean(self):
        data = super().clean()
        for metric_field, category_field in WIDGET_SOURCES:
            error = category_error(data.get(metric_field), data.get(category_field, ""))
            if error:
                self.add_error(category_field, error)
        return data
