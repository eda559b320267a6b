from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models


class DemoRecord(models.Model):
    """A row ``seed_demo`` created, under a stable key such as ``client:0042``.

    Clients, sites and connection requests are numbered by the platform's sequences, so
    their numbers cannot say which demo record they are; this table can. A second seed
    looks a key up here instead of creating the record again.
    """

    key = models.CharField(max_length=64, unique=True)
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_id = models.PositiveBigIntegerField()
    record = GenericForeignKey("content_type", "object_id")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key
