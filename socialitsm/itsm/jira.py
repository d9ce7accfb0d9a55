"""Jira Service Management: customer requests through the JSM API, our reference as a label.

Connection: base_url https://<site>.atlassian.net; credentials {"email", "api_token"} (Basic) or
{"token"} (OAuth bearer); config {"service_desk_id", "request_type_id"} and optionally
"raise_on_behalf_of" (an accountId). States move by workflow transitions, found by the name of
the status they lead to (state_map.out names it per state; the defaults follow the JSM IT service
template). field_map users maps our usernames to accountIds; groups are not sent to Jira.
Jira search is eventually consistent: a record created seconds ago may not be found by a retry.
A major incident's children are tied to it by an issue link (POST /rest/api/3/issueLink) of type
config "parent_link_type" (default "Relates"; e.g. "Problem/Incident" in JSM), the major incident
on the side config "parent_link_side" names ("outward", the default: the link originates from
it, as "causes"; or "inward"). A link of that type between the two issues is never made twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import requests

from socialitsm.exceptions import PermanentError

from .base import ExternalTicket, ItsmAdapter, TicketFields

PRIORITIES = {1: "Highest", 2: "High", 3: "Medium", 4: "Low", 5: "Lowest"}


class JiraAdapter(ItsmAdapter):
    kind = "jira"
    STATES_OUT = {
        "new": "Open",
        "in_progress": "Work in progress",
        "on_hold": "Pending",
        "resolved": "Resolved",
        "closed": "Closed",
        "canceled": "Canceled",
    }
    STATES_IN = {
        "Open": "new",
        "Waiting for support": "new",
        "Work in progress": "in_progress",
        "In Progress": "in_progress",
        "Pending": "on_hold",
        "Waiting for customer": "on_hold",
        "Resolved": "resolved",
        "Done": "resolved",
        "Closed": "closed",
        "Canceled": "canceled",
    }

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Accept": "application/json"}
        auth = None
        if self.credentials.get("token"):
            headers["Authorization"] = f"Bearer {self.credentials['token']}"
        elif self.credentials.get("email"):
            auth = (str(self.credentials["email"]), str(self.credentials.get("api_token", "")))
        else:
            raise PermanentError("the Jira connection needs credentials: email and api_token, or token")
        return self.send(method, self.url(path), headers=headers, auth=auth, **kwargs)

    def _label(self, external_ref: str) -> str:
        # Labels cannot hold spaces; our references never do, this guards odd prefixes.
        return external_ref.replace(" ", "_")

    def find(self, external_ref: str) -> ExternalTicket | None:
        body = {"jql": f'labels = "{self._label(external_ref)}"', "fields": ["status", "updated"], "maxResults": 1}
        issues = self.json(self._call("POST", "/rest/api/3/search/jql", json=body)).get("issues") or []
        return self._issue(issues[0]) if issues else None

    def _issue(self, issue: dict[str, Any]) -> ExternalTicket:
        fields = issue.get("fields") or {}
        updated = fields.get("updated")
        return ExternalTicket(
            remote_id=str(issue["id"]),
            key=str(issue.get("key", "")),
            url=self.url(f"/browse/{issue.get('key', issue['id'])}"),
            status=str((fields.get("status") or {}).get("name", "")),
            updated_at=datetime.strptime(updated, "%Y-%m-%dT%H:%M:%S.%f%z") if updated else None,
        )

    def create(self, fields: TicketFields, *, idempotency_key: str) -> ExternalTicket:
        body: dict[str, Any] = {
            "serviceDeskId": str(self.setting("service_desk_id")),
            "requestTypeId": str(self.setting("request_type_id")),
            "requestFieldValues": {
                "summary": fields.short_description,
                "description": f"{fields.description}\n\nSocialITSM {fields.number}: {fields.url}",
                "priority": {"name": PRIORITIES[fields.priority]},
                "labels": [self._label(fields.external_ref)],
            },
        }
        if self.config.get("raise_on_behalf_of"):
            body["raiseOnBehalfOf"] = str(self.config["raise_on_behalf_of"])
        data = self.json(self._call("POST", "/rest/servicedeskapi/request", json=body))
        try:
            return ExternalTicket(
                remote_id=str(data["issueId"]),
                key=str(data["issueKey"]),
                url=self.url(f"/browse/{data['issueKey']}"),
                status=str((data.get("currentStatus") or {}).get("status", "")),
            )
        except (KeyError, TypeError) as exc:
            raise PermanentError(f"Jira did not create the request: {str(data)[:200]}") from exc

    def update(self, remote_id: str, fields: TicketFields, changed: tuple[str, ...]) -> None:
        values: dict[str, Any] = {}
        if "short_description" in changed:
            values["summary"] = fields.short_description
        if "priority" in changed:
            values["priority"] = {"name": PRIORITIES[fields.priority]}
        if "assignee" in changed:
            account = self.mapped("users", fields.assignee)
            if account or not fields.assignee:
                values["assignee"] = {"accountId": account} if account else None
        if values:
            self._call("PUT", f"/rest/api/3/issue/{remote_id}", json={"fields": values})
        if "state" in changed:
            self._transition(remote_id, self.state_out(fields.state))

    def _transition(self, remote_id: str, status: str) -> None:
        options = self.json(self._call("GET", f"/rest/api/3/issue/{remote_id}/transitions")).get("transitions") or []
        chosen = next((t for t in options if (t.get("to") or {}).get("name") == status), None)
        if chosen is None:
            available = ", ".join(sorted(str((t.get("to") or {}).get("name")) for t in options)) or "none"
            # Already there (e.g. "Waiting for support" is JSM's new, like "Open").
            if self.state_in(self.fetch(remote_id).status) == self.state_in(status):
                return
            raise PermanentError(f"Jira offers no transition of {remote_id} to {status!r} (available: {available})")
        self._call("POST", f"/rest/api/3/issue/{remote_id}/transitions", json={"transition": {"id": str(chosen["id"])}})

    def comment(self, remote_id: str, text: str, *, public: bool) -> str:
        data = self.json(
            self._call(
                "POST", f"/rest/servicedeskapi/request/{remote_id}/comment", json={"body": text, "public": public}
            )
        )
        return str(data.get("id", ""))

    def _parent_links(self, remote_id: str, parent_id: str) -> list[str]:
        """Ids of the child's links of our type to the parent, whichever side it is on."""
        kind = str(self.config.get("parent_link_type") or "Relates")
        issue = self.json(self._call("GET", f"/rest/api/3/issue/{remote_id}", params={"fields": "issuelinks"}))
        found = []
        for item in (issue.get("fields") or {}).get("issuelinks") or []:
            other = item.get("inwardIssue") or item.get("outwardIssue") or {}
            if (item.get("type") or {}).get("name") == kind and str(other.get("id", "")) == parent_id:
                found.append(str(item["id"]))
        return found

    def parent_link(self, remote_id: str, parent_id: str) -> None:
        if self._parent_links(remote_id, parent_id):
            return
        side = str(self.config.get("parent_link_side") or "outward")
        if side not in ("outward", "inward"):
            raise PermanentError(f"config parent_link_side must be 'outward' or 'inward', not {side!r}")
        child, parent = {"id": remote_id}, {"id": parent_id}
        body = {
            "type": {"name": str(self.config.get("parent_link_type") or "Relates")},
            "outwardIssue": parent if side == "outward" else child,
            "inwardIssue": child if side == "outward" else parent,
        }
        self._call("POST", "/rest/api/3/issueLink", json=body)

    def parent_unlink(self, remote_id: str, parent_id: str) -> None:
        for link_id in self._parent_links(remote_id, parent_id):
            self._call("DELETE", f"/rest/api/3/issueLink/{link_id}")

    def fetch(self, remote_id: str) -> ExternalTicket:
        return self._issue(
            self.json(self._call("GET", f"/rest/api/3/issue/{remote_id}", params={"fields": "status,updated"}))
        )

    def webhook_remote_id(self, payload: Any) -> str:
        if isinstance(payload, dict) and isinstance(payload.get("issue"), dict) and payload["issue"].get("id"):
            return str(payload["issue"]["id"])
        return super().webhook_remote_id(payload)
