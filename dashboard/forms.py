from django import forms
from django.utils import timezone

from dashboard import access, webhooks
from metrics.models import AlertRule


class AlertRuleForm(forms.ModelForm):
    """A rule on a metric and category the user may see, and nothing else."""

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
            if metric.category_type != "NONE" and category not in metric.categories:
                self.add_error("category", f"{metric.name} has no category {category!r}.")
            elif not self.scope.allows(category):
                self.add_error("category", "That queue or agent is not in your team.")
        return data
