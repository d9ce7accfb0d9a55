"""SocialITSM's settings with their defaults; read through `conf.<NAME>` at call time.

A host project sets them in one dict, as DRF's REST_FRAMEWORK::

    SOCIALITSM = {"ENCRYPTION_KEYS": [...], "SITE_URL": "https://social.example.com"}

Each name is looked up in `settings.SOCIALITSM` first, then as the flat setting
`SOCIALITSM_<NAME>` (how earlier versions were configured, still honoured), then in DEFAULTS.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULTS: dict[str, Any] = {
    # Fernet keys (urlsafe base64, 32 bytes); the first encrypts, all decrypt (rotation).
    "ENCRYPTION_KEYS": [],
    # Webhook ingest limits: characters of post text, posts per batch.
    "MAX_POST_CHARS": 40_000,
    "MAX_BATCH": 500,
    # Incident numbers: prefix + zero-padded counter starting at NUMBER_START.
    "NUMBER_PREFIX": "INC",
    "NUMBER_DIGITS": 7,
    "NUMBER_START": 1001,
    "DEFAULT_IMPACT": 3,
    # Spike detection: this many distinct people complaining about one service within
    # SPIKE_WINDOW_MINUTES open a major incident for it (a service may set its own values).
    "SPIKE_AUTHORS": 5,
    "SPIKE_WINDOW_MINUTES": 15,
    # Off: routing never opens or joins major incidents (agents still link by hand).
    "SPIKE_DETECTION": True,
    # The group (by name) that takes incidents neither their service's owner group nor their
    # watch rule routes; migration 0011 creates it on a fresh install. "" leaves them unassigned.
    "DEFAULT_GROUP": "Service Desk",
    # Posts stored a few at a time (fewer than DRAIN_BELOW in one call: webhook calls, stream
    # events) are routed by a drain task that takes every pending post, DRAIN_BATCH at a time,
    # for at most DRAIN_SECONDS a run. At most one drain is queued at a time: a flag in the
    # DRAIN_CACHE cache (shared by web and worker processes; "" enqueues a drain per call)
    # says one is on its way, and lapses after DRAIN_FLAG_SECONDS if its worker died.
    "DRAIN_BELOW": 100,
    "DRAIN_BATCH": 500,
    "DRAIN_SECONDS": 60,
    "DRAIN_CACHE": "",
    "DRAIN_FLAG_SECONDS": 90,
    # Work not finished after this many seconds is picked up again by the recovery sweep.
    "STALE_AFTER_SECONDS": 120,
    # A reply claimed for sending longer ago than this is considered abandoned by a dead worker.
    "SEND_LEASE_SECONDS": 300,
    # A reply that fails transiently (timeout, 429, 5xx) stays queued and is tried again with
    # exponential backoff and jitter, each wait at most REPLY_MAX_BACKOFF_SECONDS (or until the
    # time the network named), for REPLY_RETRY_HOURS after its first failure; then it fails.
    "REPLY_RETRY_HOURS": 24,
    "REPLY_MAX_BACKOFF_SECONDS": 900,
    # Broadcasts to the posters of a major incident go out paced, at most this many replies
    # per minute on one channel (networks rate-limit posting and punish bursts of near-identical
    # replies); a channel's config "broadcast_per_minute" overrides its network's figure.
    "BROADCAST_PER_MINUTE": {
        "mastodon": 2,
        "bluesky": 6,
        "x": 2,
        "reddit": 4,
        "webhook": 60,
        "replay": 60,
        "default": 6,
    },
    # The text of the "fixed" broadcast proposed when a major incident is resolved; agents edit
    # it before they confirm. Variables: {name}, {handle}, {service}, {incident}.
    "BROADCAST_FIXED_TEXT": (
        "Hi {name}, the {service} problem you reported ({incident}) is fixed now. "
        "Thank you for your patience; tell us here if anything still fails for you."
    ),
    "HTTP_TIMEOUT": 10.0,
    # Outbound URLs to private, loopback or link-local addresses are refused unless this is set.
    "ALLOW_PRIVATE_URLS": False,
    "DEMO": False,
    # An SLA clock is "at risk" (and a warning event is emitted) once this share of its target is used.
    "SLA_WARN_RATIO": 0.8,
    # Absolute URL of this site, for links back from ITSM suites, e.g. https://social.example.com.
    "SITE_URL": "",
    # ITSM sync: our reference in the suites is "<prefix>:<incident number>".
    "ITSM_REF_PREFIX": "socialitsm",
    # Audit events younger than this are looked at again: a transaction that wrote an earlier
    # id may commit after a later one.
    "ITSM_SETTLE_SECONDS": 30,
    # A link claimed longer ago than this is considered abandoned by a dead worker.
    "ITSM_LEASE_SECONDS": 300,
    # Transient failures retry with exponential backoff up to this many seconds, without end.
    "ITSM_MAX_BACKOFF_SECONDS": 900,
    # A rule's first poll takes the network's latest page, but only posts from the last
    # BACKFILL_HOURS: connecting a busy account must not open incidents for last month's posts.
    "BACKFILL_HOURS": 24,
    # Channel health: a channel that stored at least QUIET_BUSY_POSTS posts in the last
    # QUIET_WINDOW_HOURS is "busy"; it is flagged quiet once nothing came for QUIET_GAPS times
    # its usual gap between posts (and at least QUIET_MIN_MINUTES).
    "QUIET_WINDOW_HOURS": 168,
    "QUIET_BUSY_POSTS": 50,
    "QUIET_GAPS": 10,
    "QUIET_MIN_MINUTES": 30,
    # Posts of live incidents are asked after on their network (deleted upstream?) at most every
    # RECHECK_MINUTES, at most RECHECK_MAX_POSTS per channel and sweep; networks that bill
    # reads (X) default to less, and a channel's config may set its own.
    "RECHECK_MINUTES": 30,
    "RECHECK_MAX_POSTS": 100,
    # Complaint model retrained from agents' labels (socialitsm_train); the shipped one while absent.
    "MODEL_PATH": "",
    # The sentence encoder (local multilingual USE in numpy) and the decision head that reads it; False
    # leaves the fast n-gram model to decide alone, and services to names and aliases.
    "CLASSIFIER_ENCODER": True,
    # Folder of the public training sets (TweetEval, VADER tweets), one sub-folder each.
    "DATA_DIR": "",
    # Rate limits ("<count>/<second|minute|hour|day>"; None turns one off), kept in the cache
    # THROTTLE_CACHE names (Redis in production, so every process counts together):
    "THROTTLE_RATES": {
        # signed posts per webhook channel, and signed calls per ITSM connection;
        "ingest": "600/minute",
        # calls to the signed endpoints refused (no or bad signature, too large) per address;
        "ingest_refused": "60/minute",
        # API calls per user (token or session), and per client address (anonymous ones too);
        "api_user": "600/minute",
        "api_address": "1200/minute",
        # API calls with a token that is not valid, per client address.
        "api_auth_failure": "20/minute",
    },
    "THROTTLE_CACHE": "default",
    # Proxies (addresses or networks) whose X-Forwarded-For is believed; nobody's by default.
    "TRUSTED_PROXIES": [],
    # -- Operations: metrics, listening alerts, health, chat ----------------------------------
    # /metrics answers a request bearing this token ("Authorization: Bearer <token>") or coming
    # from one of METRICS_ALLOW's addresses or networks; with neither set it answers no one.
    "METRICS_TOKEN": "",
    "METRICS_ALLOW": [],
    # Celery queues whose depth /metrics reports.
    "METRICS_QUEUES": ["default", "io", "ingest", "classify", "replies", "itsm"],
    # A streaming channel whose stream fell back to polling this many times within
    # STREAM_FALLBACK_WINDOW_MINUTES raises a "stream_fallback" alert.
    "STREAM_FALLBACK_ALERTS": 3,
    "STREAM_FALLBACK_WINDOW_MINUTES": 60,
    # A token whose expiry (credentials "expires_at", ISO 8601) is this close raises "token_expiring".
    "TOKEN_EXPIRY_WARN_DAYS": 7,
    # A rate-limit allowance with less than this share left raises "quota_low".
    "QUOTA_LOW_RATIO": 0.1,
    # The worker's heartbeat (written by the alerts sweep every minute) is stale after this long.
    "HEARTBEAT_STALE_SECONDS": 300,
    # Timeout of the broker ping in /readyz and of the doctor's reachability checks.
    "READY_TIMEOUT": 2.0,
    # Chat messages (Slack, Teams) failing with 429 or 5xx are retried this often, with backoff.
    "CHAT_MAX_RETRIES": 5,
    # The queue's "breaching soon" view: open incidents with a running SLA clock due within this
    # many minutes (or already past due).
    "QUEUE_BREACHING_MINUTES": 120,
    # How often an open queue page asks whether anything changed (one indexed lookup; the rows
    # are rendered again only when something did). 0 turns live updates off.
    "QUEUE_POLL_SECONDS": 15,
    # The incident page: an internal note's length; how long an agent shows as viewing an
    # incident after their page last asked (it asks every PRESENCE_POLL_SECONDS); how many of
    # the poster's other incidents and posts "Who is this" shows a page.
    "NOTE_MAX_CHARS": 10_000,
    "PRESENCE_TTL_SECONDS": 30,
    "PRESENCE_POLL_SECONDS": 10,
    "POSTER_HISTORY_PAGE": 10,
    # How an agent's signature is appended to a public reply, per network: the separator put
    # before it ("default" for networks not named).
    "SIGNATURE_SEPARATOR": {"x": " ", "bluesky": " ", "default": "\n"},
    # The public-reply guard: default region for phone numbers written without a country code
    # (ISO 3166 code, e.g. "DE"; "" finds international numbers only), and the shortest run of
    # digits that looks like an account, customer or card number.
    "GUARD_PHONE_REGION": "",
    "GUARD_DIGIT_RUN": 8,
}


NAMESPACE = "SOCIALITSM"


def _namespace() -> dict[str, Any]:
    values = getattr(settings, NAMESPACE, None)
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ImproperlyConfigured(
            f"settings.{NAMESPACE} must be a dict of SocialITSM settings, e.g. {{'SITE_URL': ...}}"
        )
    return values


class _Conf:
    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(name)
        values = _namespace()
        if name in values:
            return values[name]
        return getattr(settings, f"{NAMESPACE}_{name}", DEFAULTS[name])


def unknown_names() -> list[str]:
    """Names in settings.SOCIALITSM that no setting has: most often a typo (see checks.py)."""
    return sorted(name for name in _namespace() if name not in DEFAULTS)


conf = _Conf()
