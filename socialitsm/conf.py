"""SOCIALITSM_* settings with their defaults; read through `conf.<NAME>` at call time."""

from __future__ import annotations

from typing import Any

from django.conf import settings

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
    # The sentence encoder (local ONNX MiniLM) and the decision head that reads it; False
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


class _Conf:
    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(name)
        return getattr(settings, f"SOCIALITSM_{name}", DEFAULTS[name])


conf = _Conf()
