from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import factory
from django.contrib.auth import get_user_model
from django.db import connections
from django.utils import timezone

from socialitsm.connectors import InboundAuthor, InboundPost
from socialitsm.models import Author, Channel, Incident, Network, Post, Reply, Service, WatchRule
from socialitsm.services.figures import incidents_figures_refresh
from socialitsm.services.routing import posts_process

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password(PASSWORD)


class ChannelFactory(factory.django.DjangoModelFactory):
    """A channel on the in-memory fake network unless told otherwise."""

    class Meta:
        model = Channel

    name = factory.Sequence(lambda n: f"Channel {n}")
    slug = factory.Sequence(lambda n: f"channel-{n}")
    network = Network.REPLAY
    handle = "@ITSupport"
    config = factory.LazyFunction(lambda: {"connector": "fake"})
    credentials = factory.LazyFunction(lambda: {"secret": "s3cret-for-tests"})


class WatchRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WatchRule

    channel = factory.SubFactory(ChannelFactory)
    name = "IT complaints"
    kind = WatchRule.Kind.SEARCH
    query = "helpdesk"
    complaint_threshold = 0.5


class AuthorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Author

    network = Network.REPLAY
    external_id = factory.Sequence(lambda n: f"u-{n}")
    handle = factory.Sequence(lambda n: f"@person{n}")
    name = factory.Sequence(lambda n: f"Person {n}")


class PostFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Post
        skip_postgeneration_save = True

    rule = factory.SubFactory(WatchRuleFactory)
    channel = factory.SelfAttribute("rule.channel")
    network = factory.SelfAttribute("channel.network")
    external_id = factory.Sequence(lambda n: f"p-{n}")
    author = factory.SubFactory(AuthorFactory)
    text = "VPN down again, third time this week"
    posted_at = factory.LazyFunction(lambda: datetime(2026, 11, 26, 8, 0, tzinfo=UTC))
    # Never before it was posted: a post dated after its receipt is clock skew, which tests ask for.
    ingested_at = factory.LazyAttribute(lambda post: max(timezone.now(), post.posted_at))

    @factory.post_generation
    def figures(post: Post, create: bool, extracted, **kwargs) -> None:
        """Linked as the services link posts: the incident's stored post count follows."""
        if create and post.incident_id is not None:
            incidents_figures_refresh(incident_ids=[post.incident_id])


class IncidentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Incident

    number = factory.Sequence(lambda n: f"INC{9000000 + n:07d}")
    short_description = "VPN down again"
    service = factory.LazyFunction(lambda: Service.objects.get(slug="vpn"))


class ReplyFactory(factory.django.DjangoModelFactory):
    """A reply as the reply box records it; sent by the channel of the post it answers."""

    class Meta:
        model = Reply

    post = factory.SubFactory(PostFactory)
    incident = factory.LazyAttribute(lambda reply: reply.post.incident or IncidentFactory())
    channel = factory.SelfAttribute("post.channel")
    visibility = Reply.Visibility.PUBLIC
    text = "On it"


def major_incident(**fields) -> Incident:
    """A major incident about the catalogue's e-mail service."""
    fields.setdefault("short_description", "E-mail down")
    return IncidentFactory(is_major=True, service=Service.objects.get(slug="email"), **fields)


def major_child(
    major: Incident,
    rule: WatchRule,
    *,
    handle: str,
    name: str = "",
    state: str = "new",
    number: str = "",
    **post_fields,
) -> tuple[Incident, Post]:
    """One poster's own incident under `major`, opened from their post on `rule`'s channel."""
    numbered = {"number": number} if number else {}
    child = IncidentFactory(parent=major, service=major.service, state=state, **numbered)
    author = AuthorFactory(handle=handle, name=name)
    post = PostFactory(rule=rule, author=author, incident=child, triage_state=Post.Triage.INCIDENT, **post_fields)
    return child, post


def dead_worker_reply(post: Post, *, channel: Channel, visibility: str, text: str, claimed_at: datetime) -> Reply:
    """A reply whose first attempt was claimed at `claimed_at` (a minute after it was queued)
    and whose worker then died: still SENDING, with one attempt spent."""
    return Reply.objects.create(
        incident=post.incident,
        post=post,
        channel=channel,
        visibility=visibility,
        text=text,
        status=Reply.Status.SENDING,
        attempts=1,
        created_at=claimed_at - timedelta(minutes=1),
        claimed_at=claimed_at,
    )


def inbound(
    external_id: str, text: str = "VPN down again, third time this week", *, author: str = "u-1", **extra
) -> InboundPost:
    """An InboundPost as a connector would hand it over."""
    return InboundPost(
        external_id=external_id,
        author=InboundAuthor(author, f"@{author}", author.title()),
        text=text,
        posted_at=extra.pop("posted_at", datetime(2026, 11, 26, 8, 0, tzinfo=UTC)),
        **extra,
    )


def route_concurrently(chunks: list[list[int]]) -> list[Exception]:
    """Route the posts of each chunk (ids) in a thread of its own, with its own database
    connection, ten at a time as the routing task does, all starting together. Returns what the
    workers raised."""
    barrier = threading.Barrier(len(chunks))
    errors: list[Exception] = []

    def work(ids: list[int]) -> None:
        try:
            barrier.wait()
            for start in range(0, len(ids), 10):
                posts_process(post_ids=ids[start : start + 10])
        except Exception as exc:  # collected and asserted by the caller
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(chunk,)) for chunk in chunks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors
