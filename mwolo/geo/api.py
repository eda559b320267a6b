"""Provinces, territories and communes: public reference data for address forms."""

from django.utils.translation import gettext_lazy as _
from rest_framework import permissions, serializers, viewsets

from .models import Commune, Province, Territory


class ProvinceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Province
        fields = ["id", "code", "name", "capital", "time_zone"]


class TerritorySerializer(serializers.ModelSerializer):
    # ``kind`` is a plain string here: an enum would share its OpenAPI name with the
    # clients' ``kind`` (person/company), a different choice set.
    kind = serializers.CharField(read_only=True, help_text=_("city or territory"))
    kind_label = serializers.CharField(source="get_kind_display", read_only=True)

    class Meta:
        model = Territory
        fields = ["id", "name", "kind", "kind_label", "province"]


class CommuneSerializer(serializers.ModelSerializer):
    kind = serializers.CharField(read_only=True, help_text=_("commune, sector or chiefdom"))
    kind_label = serializers.CharField(source="get_kind_display", read_only=True)

    class Meta:
        model = Commune
        fields = ["id", "name", "kind", "kind_label", "territory"]


class _PublicReferenceViewSet(viewsets.ReadOnlyModelViewSet):
    """Anyone may read: the public connection form needs these lists."""

    permission_classes = [permissions.AllowAny]
    # No authentication: a stale token in a browser must not break a public form.
    authentication_classes: list = []
    lookup_value_converter = "int"
    search_fields = ["name"]
    ordering_fields = ["name"]


class ProvinceViewSet(_PublicReferenceViewSet):
    queryset = Province.objects.all()
    serializer_class = ProvinceSerializer
    search_fields = ["name", "code", "capital"]
    ordering_fields = ["name", "code"]


class TerritoryViewSet(_PublicReferenceViewSet):
    queryset = Territory.objects.order_by("name")
    serializer_class = TerritorySerializer
    filterset_fields = ["province", "kind"]


class CommuneViewSet(_PublicReferenceViewSet):
    queryset = Commune.objects.order_by("name")
    serializer_class = CommuneSerializer
    filterset_fields = ["territory", "kind"]
