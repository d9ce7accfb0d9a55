from __future__ import annotations

import pytest

from socialitsm.models import Author, AuthorErasure, Channel, Post

from ..factories import AuthorFactory, ChannelFactory, PostFactory

pytestmark = pytest.mark.django_db


def test_lead_sets_a_channels_retention_period(lead_api):
    channel = ChannelFactory(slug="masto")

    response = lead_api.patch("/api/v1/channels/masto/", {"retention_days": 400}, format="json")

    assert response.status_code == 200
    assert response.json()["retention_days"] == 400
    assert Channel.objects.get(pk=channel.pk).retention_days == 400
    assert lead_api.patch("/api/v1/channels/masto/", {"retention_days": None}, format="json").status_code == 200
    assert Channel.objects.get(pk=channel.pk).retention_days is None


@pytest.mark.parametrize("days", [0, -1, "soon"])
def test_retention_period_must_be_a_positive_number_of_days(lead_api, days):
    ChannelFactory(slug="masto", retention_days=30)

    response = lead_api.patch("/api/v1/channels/masto/", {"retention_days": days}, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["retention_days"]
    assert Channel.objects.get(slug="masto").retention_days == 30


def test_agents_cannot_change_retention_or_erase_posters(agent_api):
    ChannelFactory(slug="masto")
    post = PostFactory(author=AuthorFactory(handle="@maria"))

    assert agent_api.patch("/api/v1/channels/masto/", {"retention_days": 1}, format="json").status_code == 403
    assert agent_api.post(f"/api/v1/posts/{post.pk}/erase-author/").status_code == 403
    assert Channel.objects.get(slug="masto").retention_days is None
    assert Author.objects.get(pk=post.author_id).handle == "@maria"
    assert not AuthorErasure.objects.exists()


def test_lead_erases_the_poster_of_a_post(lead_api, lead):
    author = AuthorFactory(handle="@maria")
    post = PostFactory(author=author, text="my VPN is down")

    response = lead_api.post(f"/api/v1/posts/{post.pk}/erase-author/")

    assert response.status_code == 200
    record = AuthorErasure.objects.get()
    assert response.json() == {
        "author": author.pk,
        "author_ref": record.author_ref,
        "erased_by": "lead.lars",
        "erased_at": record.created_at.isoformat().replace("+00:00", "Z"),
    }
    assert len(record.author_ref) == 64
    assert not Post.objects.filter(pk=post.pk).exists()
    assert Author.objects.get(pk=author.pk).handle == ""
