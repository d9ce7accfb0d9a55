from __future__ import annotations

import pytest

from socialitsm.models import Notification, NotificationKind

from ..factories import IncidentFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/notifications/"


def _notify(user, key: str, incident=None, **fields) -> Notification:
    return Notification.objects.create(
        user=user, kind=NotificationKind.ASSIGNED, key=key, title=f"about {key}", incident=incident, **fields
    )


def test_notifications_need_a_login(api):
    assert api.get(URL).status_code == 401


def test_notifications_need_the_agent_role(outsider_api):
    assert outsider_api.get(URL).status_code == 403


def test_list_shows_only_the_callers_own_in_app_notifications(agent_api, agent, lead):
    incident = IncidentFactory()
    mine = _notify(agent, "a", incident=incident)
    _notify(agent, "b", in_app=False)
    _notify(lead, "c")

    response = agent_api.get(URL)

    assert response.status_code == 200
    assert [(n["id"], n["incident"], n["read"], n["kind"]) for n in response.json()["results"]] == [
        (mine.pk, incident.number, False, "assigned")
    ]


def test_unread_filter_and_mark_one_read(agent_api, agent):
    first = _notify(agent, "a")
    second = _notify(agent, "b")

    marked = agent_api.post(f"{URL}{first.pk}/read/")
    unread = agent_api.get(URL, {"unread": "true"})

    assert (marked.status_code, marked.json()["read"]) == (200, True)
    assert [n["id"] for n in unread.json()["results"]] == [second.pk]


def test_another_persons_notification_is_not_found(agent_api, lead):
    theirs = _notify(lead, "a")

    assert agent_api.get(f"{URL}{theirs.pk}/").status_code == 404
    assert agent_api.post(f"{URL}{theirs.pk}/read/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_read_all_marks_the_callers_unread_ones(agent_api, agent, lead):
    for key in "abc":
        _notify(agent, key)
    other = _notify(lead, "d")

    response = agent_api.post(f"{URL}read-all/", {}, format="json")

    assert response.json() == {"marked": 3, "unread": 0}
    assert Notification.objects.filter(user=agent, read_at__isnull=True).count() == 0
    other.refresh_from_db()
    assert other.read_at is None


def test_read_all_can_name_the_ones_to_mark(agent_api, agent):
    first, _second = _notify(agent, "a"), _notify(agent, "b")

    response = agent_api.post(f"{URL}read-all/", {"ids": [first.pk]}, format="json")

    assert response.json() == {"marked": 1, "unread": 1}


def test_read_all_refuses_bad_ids(agent_api, agent):
    _notify(agent, "a")
    response = agent_api.post(f"{URL}read-all/", {"ids": ["x"]}, format="json")

    assert response.status_code == 400
    assert Notification.objects.filter(user=agent, read_at__isnull=True).count() == 1
