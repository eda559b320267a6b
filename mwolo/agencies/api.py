"""Active agencies and their public details: the public site's list and map.

Agencies are managed in the admin; the API only reads them. This is the one list that is
not scoped by ``visible_to``: an agency's address and hours are public information, and
only active agencies and public fields are shown.
"""

from rest_framework import permissions, serializers, viewsets

from mwolo.geo.models import TimeZone

from .models import Agency, OpeningHours


class PlaceSerializer(serializers.Serializer):
    """A level of the address (province, territory, commune) by id and name."""

    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)


class OpeningHoursSerializer(serializers.ModelSerializer):
    weekday_label = serializers.CharField(source="get_weekday_display", read_only=True)

    class Meta:
        model = OpeningHours
        fields = ["weekday", "weekday_label", "opens_at", "closes_at"]


class AgencyPublicSerializer(serializers.ModelSerializer):
    province = PlaceSerializer(read_only=True)
    territory = PlaceSerializer(read_only=True)
    commune = PlaceSerializer(read_only=True, allow_null=True)
    time_zone = serializers.ChoiceField(choices=TimeZone.choices, read_only=True)
    opening_hours = OpeningHoursSerializer(many=True, read_only=True)

    class Meta:
        model = Agency
        fields = [
            "id",
            "code",
            "name",
            "address_line",
            "commune",
            "territory",
            "province",
            "phone",
            "email",
            "latitude",
            "longitude",
            "time_zone",
            "opening_hours",
        ]


class AgencyViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = (
        Agency.objects.filter(is_active=True)
        .select_related("province", "territory", "commune")
        .prefetch_related("opening_hours")
    )
    serializer_class = AgencyPublicSerializer
    permission_classes = [permissions.AllowAny]
    # No authentication: a stale token in a browser must not break the public map.
    authentication_classes: list = []
    lookup_value_converter = "int"
    filterset_fields = ["province", "territory", "commune"]
    search_fields = ["code", "name", "address_line", "territory__name", "commune__name"]
    ordering_fields = ["name", "code"]
    ordering = ["name"]
