"""Request Tracker 5 over REST2: tickets in a queue, our reference in a ticket custom field.

Connection: base_url is RT's web root (e.g. https://rt.example.com); credentials {"token": ...}
(Authorization: token) or {"username", "password"} (Basic); config {"queue": "Social",
"external_id_field": "ExternalID"} (the custom field must be applied to the queue).
RT answers some refused updates with HTTP 200 and a message, so every update is read back.
A major incident's children are members of it (RT's MemberOf link, shown as their "parent"):
AddMemberOf / DeleteMemberOf on the child, then read back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

import requests

from socialitsm.exceptions import PermanentError

from .base import ExternalTicket, ItsmAdapter, TicketFields

# Our priority 1..5 -> RT's 0..100 (RT's default labels: High=100, Medium=50, Low=0).
PRIORITIES = {1: 100, 2: 75, 3: 50, 4: 25, 5: 0}
UNSET = "1970-01-01T00:00:00Z"
# Fields read back after an update; Queue comes back as an id, so a queue move is not compared.
VERIFIED = ("Status", "Subject", "Priority", "Owner")


class RtAdapter(ItsmAdapter):
    kind = "rt"
    STATES_OUT = {
        "new": "new",
        "in_progress": "open",
        "on_hold": "stalled",
        "resolved": "resolved",
        "closed": "resolved",
        "canceled": "rejected",
    }
    STATES_IN = {
        "new": "new",
        "open": "in_progress",
        "stalled": "on_hold",
        "resolved": "resolved",
        "rejected": "canceled",
        "deleted": "canceled",
    }

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Accept": "application/json"}
        auth = None
        if self.credentials.get("token"):
            headers["Authorization"] = f"token {self.credentials['token']}"
        elif self.credentials.get("username"):
            auth = (str(self.credentials["username"]), str(self.credentials.get("password", "")))
        else:
            raise PermanentError("the RT connection needs credentials: token, or username and password")
        return self.send(method, self.url(f"/REST/2.0{path}"), headers=headers, auth=auth, **kwargs)

    def _cf(self) -> str:
        return str(self.config.get("external_id_field", "ExternalID"))

    def _ticket(self, data: dict[str, Any]) -> ExternalTicket:
        remote_id = str(data["id"])
        updated = data.get("LastUpdated")
        return ExternalTicket(
            remote_id=remote_id,
            key=f"#{remote_id}",
            url=self.url(f"/Ticket/Display.html?id={remote_id}"),
            status=str(data.get("Status", "")),
            updated_at=datetime.fromisoformat(updated) if updated and updated != UNSET else None,
        )

    def find(self, external_ref: str) -> ExternalTicket | None:
        query = f"'CF.{{{self._cf()}}}' = '{external_ref.replace(chr(39), '')}'"
        response = self._call(
            "GET",
            "/tickets",
            params={"query": query, "fields": "Status,LastUpdated", "orderby": "id", "order": "ASC"},
        )
        items = self.json(response).get("items") or []
        return self._ticket(items[0]) if items else None

    def _check_queue(self, queue: str) -> None:
        """RT silently drops custom fields the queue does not have; without ours, `find` could
        never see the ticket and every retry would make another. Refuse before creating."""
        data = self.json(self._call("GET", f"/queue/{quote(queue, safe='')}"))
        names = {str(cf.get("name")) for cf in data.get("TicketCustomFields") or [] if isinstance(cf, dict)}
        if self._cf() not in names:
            raise PermanentError(f"RT queue {queue!r} has no custom field {self._cf()!r}; apply it to the queue")

    def create(self, fields: TicketFields, *, idempotency_key: str) -> ExternalTicket:
        self._check_queue(str(self.setting("queue")))
        body: dict[str, Any] = {
            "Queue": self.setting("queue"),
            "Subject": fields.short_description,
            "Content": _content(fields),
            "ContentType": "text/plain",
            "Priority": PRIORITIES[fields.priority],
            "Status": self.state_out(fields.state),
            "CustomFields": {self._cf(): fields.external_ref},
        }
        owner = self.mapped("users", fields.assignee)
        if owner:
            body["Owner"] = owner
        data = self.json(self._call("POST", "/ticket", json=body))
        if "id" not in data:
            raise PermanentError(f"RT did not create the ticket: {data}")
        return self.fetch(str(data["id"]))

    def update(self, remote_id: str, fields: TicketFields, changed: tuple[str, ...]) -> None:
        body = self._changes(fields, changed)
        if not body:
            return
        messages = self.json(self._call("PUT", f"/ticket/{remote_id}", json=body), (list, dict))
        current = self.json(self._call("GET", f"/ticket/{remote_id}"))
        refused = [name for name in VERIFIED if name in body and _value(current.get(name)) != str(body[name])]
        if refused:
            said = "; ".join(str(m) for m in messages) if isinstance(messages, list) else str(messages)
            raise PermanentError(f"RT refused {', '.join(refused)} on ticket {remote_id}: {said or 'no message'}")

    def _changes(self, fields: TicketFields, changed: tuple[str, ...]) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if "state" in changed:
            body["Status"] = self.state_out(fields.state)
        if "short_description" in changed:
            body["Subject"] = fields.short_description
        if "priority" in changed:
            body["Priority"] = PRIORITIES[fields.priority]
        if "assignee" in changed:
            owner = self.mapped("users", fields.assignee) if fields.assignee else "Nobody"
            if owner:
                body["Owner"] = owner
        if "group" in changed:
            queue = self.mapped("groups", fields.group)
            if queue:
                body["Queue"] = queue
        return body

    def comment(self, remote_id: str, text: str, *, public: bool) -> str:
        response = self._call(
            "POST",
            f"/ticket/{remote_id}/{'correspond' if public else 'comment'}",
            json={"Content": text, "ContentType": "text/plain"},
        )
        # Location: /REST/2.0/transaction/84
        return response.headers.get("Location", "").rstrip("/").rpartition("/")[2]

    def parent_link(self, remote_id: str, parent_id: str) -> None:
        self._member_of(remote_id, parent_id, linked=True)

    def parent_unlink(self, remote_id: str, parent_id: str) -> None:
        self._member_of(remote_id, parent_id, linked=False)

    def _member_of(self, remote_id: str, parent_id: str, *, linked: bool) -> None:
        """RT answers 200 whatever happened ("Link already exists", "Link not found",
        "Couldn't resolve ... into a link"): the ticket's parent links are read back instead."""
        change = "AddMemberOf" if linked else "DeleteMemberOf"
        messages = self.json(self._call("PUT", f"/ticket/{remote_id}", json={change: parent_id}), (list, dict))
        current = self.json(self._call("GET", f"/ticket/{remote_id}"))
        parents = {
            str(item.get("id"))
            for item in current.get("_hyperlinks") or []
            if isinstance(item, dict) and item.get("ref") == "parent"
        }
        if (parent_id in parents) != linked:
            said = "; ".join(str(m) for m in messages) if isinstance(messages, list) else str(messages)
            raise PermanentError(f"RT refused {change} {parent_id} on ticket {remote_id}: {said or 'no message'}")

    def fetch(self, remote_id: str) -> ExternalTicket:
        return self._ticket(self.json(self._call("GET", f"/ticket/{remote_id}")))

    def webhook_remote_id(self, payload: Any) -> str:
        if isinstance(payload, dict) and str(payload.get("ticket", "")).isdigit():
            return str(payload["ticket"])
        return super().webhook_remote_id(payload)


def _content(fields: TicketFields) -> str:
    back = f"SocialITSM {fields.number}: {fields.url}" if fields.url else f"SocialITSM {fields.number}"
    return f"{fields.description}\n\n{back}"


def _value(field: Any) -> str:
    """A ticket field as a comparable string: RT returns numbers as strings and users as refs."""
    if isinstance(field, dict):
        return str(field.get("id", ""))
    return "" if field is None else str(field)
