"""Replay: plays posts from a JSON Lines file at a set pace; replies go to an outbox file.

Channel config:
    path    the JSONL file, one post per line in the webhook's JSON post format
            (created_at may be left out: the post is then stamped with the time it is played)
    batch   posts handed out per poll (default 5), so the poll interval sets the pace
    outbox  JSONL file that replies are appended to (default var/replay-outbox.jsonl)
    loop    start again at the top when the file ends, with fresh ids (default false)
Both files must lie under one of SOCIALITSM_REPLAY_ROOTS. The cursor is {"line": n, "round": r}.
"""

from __future__ import annotations

import fcntl
import json
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils import timezone

from socialitsm.exceptions import PermanentError

from .base import Connector, Cursor, InboundPost, Limits
from .jsonpost import PostFormatError, parse_post

if TYPE_CHECKING:
    from socialitsm.models import Post, WatchRule

DEMO_FILE = Path(__file__).resolve().parent.parent / "demo" / "posts.jsonl"
# The folder holding the socialitsm package (site-packages once installed).
PACKAGE_PARENT = Path(__file__).resolve().parent.parent.parent


def replay_roots() -> list[Path]:
    default = [DEMO_FILE.parent, Path(getattr(settings, "VAR_DIR", settings.BASE_DIR / "var"))]
    return [Path(p).resolve() for p in getattr(settings, "SOCIALITSM_REPLAY_ROOTS", default)]


def _safe_path(value: str) -> Path:
    path = Path(value)
    if not path.is_absolute():
        relative = path
        path = Path(settings.BASE_DIR) / relative
        # "socialitsm/demo/posts.jsonl" where the app is installed as a package, not beside manage.py.
        packaged = PACKAGE_PARENT / relative
        if not path.exists() and packaged.exists():
            path = packaged
    path = path.resolve()
    if not any(path.is_relative_to(root) for root in replay_roots()):
        raise PermanentError(f"replay file {value!r} is outside SOCIALITSM_REPLAY_ROOTS")
    return path


class ReplayConnector(Connector):
    network = "replay"

    @property
    def source(self) -> Path:
        return _safe_path(self.channel.config.get("path", str(DEMO_FILE)))

    @property
    def outbox(self) -> Path:
        default = Path(getattr(settings, "VAR_DIR", settings.BASE_DIR / "var")) / "replay-outbox.jsonl"
        return _safe_path(self.channel.config.get("outbox", str(default)))

    def search(self, rule: WatchRule, cursor: Cursor) -> tuple[Sequence[InboundPost], Cursor]:
        batch = max(1, int(self.channel.config.get("batch", 5)))
        loop = bool(self.channel.config.get("loop", False))
        start, round_ = int(cursor.get("line", 0)), int(cursor.get("round", 0))
        try:
            lines = self.source.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise PermanentError(f"cannot read replay file: {exc.strerror}") from exc
        if start >= len(lines) and loop and lines:
            start, round_ = 0, round_ + 1
        posts = []
        end = min(start + batch, len(lines))
        for number in range(start, end):
            line = lines[number].strip()
            if not line:
                continue
            posts.append(self._parse(line, number + 1, round_))
        return posts, {"line": end, "round": round_}

    def _parse(self, line: str, number: int, round_: int) -> InboundPost:
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PermanentError(f"replay file line {number}: not JSON ({exc.msg})") from exc
        if isinstance(data, dict):
            data.setdefault("created_at", timezone.now().isoformat())
            if round_:
                data["id"] = f"{data.get('id')}~{round_}"
                for key in ("in_reply_to", "conversation_id"):
                    if data.get(key):
                        data[key] = f"{data[key]}~{round_}"
        try:
            return parse_post(data)
        except PostFormatError as exc:
            raise PermanentError(f"replay file line {number}: {exc}") from exc

    def reply(self, post: Post, text: str, visibility: str, *, idempotency_key: str) -> str:
        record = {
            "id": f"replay-{uuid.uuid4().hex[:12]}",
            "idempotency_key": idempotency_key,
            "in_reply_to": post.external_id,
            "to": post.author.handle or post.author.external_id,
            "visibility": visibility,
            "text": text,
            "sent_at": timezone.now().isoformat(),
        }
        outbox = self.outbox
        outbox.parent.mkdir(parents=True, exist_ok=True)
        with outbox.open("a+", encoding="utf-8") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            # A retry after a crash must not send twice: the key is looked up first.
            fh.seek(0)
            for existing in fh:
                if idempotency_key in existing:
                    found = json.loads(existing)
                    if found.get("idempotency_key") == idempotency_key:
                        return found["id"]
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        return record["id"]

    def limits(self) -> Limits:
        return Limits(max_reply_chars=int(self.channel.config.get("max_reply_chars", 500)))
