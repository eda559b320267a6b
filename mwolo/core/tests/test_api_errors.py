"""The API's one error shape, whatever raised the error."""

import pytest
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from mwolo.core.api_errors import exception_handler
from mwolo.core.exceptions import ApplicationError


def test_a_service_field_error_is_a_400_naming_the_field():
    response = exception_handler(ValidationError({"phone": ["Bad number."]}), {})

    assert response.status_code == 400
    assert response.data == {"phone": ["Bad number."]}


@pytest.mark.parametrize(
    "error",
    [ValidationError("Inconsistent."), ValidationError({NON_FIELD_ERRORS: ["Inconsistent."]})],
)
def test_errors_of_no_field_use_the_serializers_name(error):
    response = exception_handler(error, {})

    assert response.status_code == 400
    assert response.data == {"non_field_errors": ["Inconsistent."]}


def test_a_business_refusal_keeps_its_status_and_extra_data():
    response = exception_handler(ApplicationError("Already done.", status=409, extra={"id": 3}), {})

    assert response.status_code == 409
    assert response.data == {"detail": "Already done.", "id": 3}


@pytest.mark.django_db
@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token"])
def test_missing_or_bad_credentials_are_a_401_with_a_bearer_challenge(client, authorization):
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}

    response = client.get("/api/me/", **headers)

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
