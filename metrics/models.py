from django.db import models


class Metric(models.Model):
    """An API-enabled metric as the upstream catalog last described it.

    Rows are never deleted when a metric leaves the catalog (boards may refer to them); they are
    marked absent instead.
    """

    metric_id = models.CharField(max_length=200, unique=True)
    name = models.CharField(max_length=500, blank=True)
    category_type = models.CharField(max_length=40)
    categories = models.JSONField(default=list, blank=True)
    in_catalog = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "metric_id"]

    def __str__(self) -> str:
        return f"{self.name or self.metric_id} ({self.metric_id})"


class Sample(models.Model):
    """A tile's value at one moment, for history charts. `at` is quantized to the sampling
    interval and unique per tile, so a retried sampling task never writes a sample twice."""

    metric_id = models.CharField(max_length=200)
    category = models.CharField(max_length=500, blank=True)
    at = models.DateTimeField()
    value = models.FloatField(null=True)  # a count, or milliseconds; null: no number (avg of 0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["metric_id", "category", "at"], name="one_sample")
        ]
        indexes = [models.Index(fields=["at"])]

    def __str__(self) -> str:
        return f"{self.metric_id}/{self.category} @ {self.at:%Y-%m-%d %H:%M:%S}: {self.value}"
