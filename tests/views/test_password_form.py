"""The password form reports every problem at once (issue 16 item 22): a wrong current
password no longer hides what is wrong with the new one."""

from __future__ import annotations

import re

from tests.conftest import PASSWORD, csrf_token


def _post(client, **fields):
    return client.post(
        "/account/password",
        data={"csrf_token": csrf_token(client, "/account/password"), **fields},
    )


def _errors(response) -> list[str]:
    return re.findall(
        r'<p class="field-error" role="alert">([^<]*)</p>', response.get_data(as_text=True)
    )


def test_every_wrong_field_is_named_in_one_answer(viewer_client):
    response = _post(
        viewer_client, current_password="not it", new_password="short", confirm_password="other"
    )
    assert response.status_code == 400
    errors = _errors(response)
    assert len(errors) == 3, errors
    assert errors[0] == "Current password is wrong."
    assert errors[1].startswith("New password must be")
    assert errors[2] == "Repeat the new password does not match the new password."


def test_empty_fields_are_each_required(viewer_client):
    errors = _errors(
        _post(viewer_client, current_password="", new_password="", confirm_password="")
    )
    assert errors == [
        "Current password is required.",
        "New password is required.",
        "Repeat the new password is required.",
    ]


def test_a_right_current_password_with_a_mismatch_names_only_the_mismatch(viewer_client):
    new = "a brand new passphrase"
    errors = _errors(
        _post(
            viewer_client, current_password=PASSWORD, new_password=new, confirm_password=new + "!"
        )
    )
    assert errors == ["Repeat the new password does not match the new password."]
