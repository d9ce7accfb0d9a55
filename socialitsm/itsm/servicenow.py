"""ServiceNow Table API: incidents in the incident table, our reference in correlation_id.

Connection: base_url https://<instance>.service-now.com; credentials {"username", "password"}
(Basic) or {"token"} (OAuth bearer); config {"correlation_display": "SocialITSM",
"contact_type": "", "caller_id": "", "close_code": "Solution provided", "hold_reason": ""};
field_map groups/users map our names to sys_ids. Priority is derived by ServiceNow from impact
and urgency, so those are sent instead. A major incident's children point at it through their
parent_incident field (the parent record's sys_id).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import requests

from socialitsm.exceptions import PermanentError

from .base import ExternalTicket, ItsmAdapter, TicketFields

TABLE = "/api/now/table/incident"
FIELDS = "sys_id,number,state,sys_updated_on"


class ServiceNowAdapter(ItsmAdapter):
    kind = "servicenow"
    STATES_OUT = {
        "new": "1",
        "in_progress": "2",
        "on_hold": "3",
        "resolved": "6",
        "closed": "7",
        "canceled": "8",
    }
    # 4 and 5 are the legacy model's Awaiting User Info / Awaiting Evidence.
    STATES_IN = {
        "1": "new",
        "2": "in_progress",
        "3": "on_hold",
        "4": "on_hold",
        "5": "on_hold",
        "6": "resolved",
        "7": "closed",
        "8": "canceled",
    }

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        auth = None
        if self.credentials.get("token"):
            headers["Authorization"] = f"Bearer {self.credentials['token']}"
        elif self.credentials.get("username"):
            auth = (str(self.credentials["username"]), str(self.credentials.get("password", "")))
        else:
            raise PermanentError("the ServiceNow connection needs credentials: username and password, or token")
        return self.send(method, self.url(path), headers=headers, auth=auth, **kwargs)

    def _ticket(self, record: dict[str, Any]) -> ExternalTicket:
        sys_id = str(record["sys_id"])
        updated = record.get("sys_updated_on")
        return ExternalTicket(
            remote_id=sys_id,
            key=str(record.get("number", "")),
            url=self.url(f"/nav_to.do?uri=incident.do?sys_id={sys_id}"),
            status=str(record.get("state", "")),
            updated_at=datetime.strptime(updated, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC) if updated else None,
        )

    def _result(self, response: requests.Response) -> Any:
        data = self.json(response)
        if "result" not in data:
            raise PermanentError(f"ServiceNow answered without a result: {response.text[:200]}")
        return data["result"]

    def find(self, external_ref: str) -> ExternalTicket | None:
        response = self._call(
            "GET",
            TABLE,
            params={"sysparm_query": f"correlation_id={external_ref}", "sysparm_fields": FIELDS, "sysparm_limit": "1"},
        )
        records = self._result(response)
        return self._ticket(records[0]) if records else None

    def create(self, fields: TicketFields, *, idempotency_key: str) -> ExternalTicket:
        body: dict[str, Any] = {
            "short_description": fields.short_description,
            "description": f"{fields.description}\n\nSocialITSM {fields.number}: {fields.url}",
            "impact": str(fields.impact),
            "urgency": str(fields.urgency),
            "state": self.state_out(fields.state),
            "correlation_id": fields.external_ref,
            "correlation_display": str(self.config.get("correlation_display", "SocialITSM")),
        }
        for name in ("contact_type", "caller_id", "category"):
            if self.config.get(name):
                body[name] = str(self.config[name])
        body.update({name: value for name, value in self._people(fields, ("group", "assignee")).items() if value})
        response = self._call(
            "POST", TABLE, params={"sysparm_exclude_reference_link": "true", "sysparm_fields": FIELDS}, json=body
        )
        return self._ticket(self._result(response))

    def _people(self, fields: TicketFields, changed: tuple[str, ...]) -> dict[str, str]:
        body: dict[str, str] = {}
        if "group" in changed:
            group = self.mapped("groups", fields.group)
            if group or not fields.group:
                body["assignment_group"] = group or ""
        if "assignee" in changed:
            user = self.mapped("users", fields.assignee)
            if user or not fields.assignee:
                body["assigned_to"] = user or ""
        return body

    def update(self, remote_id: str, fields: TicketFields, changed: tuple[str, ...]) -> None:
        body: dict[str, Any] = {}
        if "short_description" in changed:
            body["short_description"] = fields.short_description
        if "impact" in changed:
            body["impact"] = str(fields.impact)
        if "urgency" in changed:
            body["urgency"] = str(fields.urgency)
        if "state" in changed:
            body["state"] = self.state_out(fields.state)
            if fields.state in ("resolved", "closed"):
                body["close_code"] = str(self.config.get("close_code", "Solution provided"))
                body["close_notes"] = f"Resolved in SocialITSM {fields.number}."
            if fields.state == "on_hold" and self.config.get("hold_reason"):
                body["hold_reason"] = str(self.config["hold_reason"])
        body.update(self._people(fields, changed))
        if body:
            self._call("PATCH", f"{TABLE}/{remote_id}", params={"sysparm_fields": FIELDS}, json=body)

    def comment(self, remote_id: str, text: str, *, public: bool) -> str:
        self._call(
            "PATCH",
            f"{TABLE}/{remote_id}",
            params={"sysparm_fields": FIELDS},
            json={"comments" if public else "work_notes": text},
        )
        return ""

    def parent_link(self, remote_id: str, parent_id: str) -> None:
        self._parent(remote_id, parent_id)

    def parent_unlink(self, remote_id: str, parent_id: str) -> None:
        self._parent(remote_id, "")

    def _parent(self, remote_id: str, parent_id: str) -> None:
        response = self._call(
            "PATCH",
            f"{TABLE}/{remote_id}",
            params={"sysparm_fields": f"{FIELDS},parent_incident", "sysparm_exclude_reference_link": "true"},
            json={"parent_incident": parent_id},
        )
        now = self._result(response).get("parent_incident", parent_id)
        if str(now or "") != parent_id:
            # A sys_id the instance cannot resolve (or an ACL on the field) is dropped, not refused.
            raise PermanentError(
                f"ServiceNow kept parent_incident {now!r} on {remote_id} instead of {parent_id!r}: "
                "is the parent record readable by the integration user?"
            )

    def fetch(self, remote_id: str) -> ExternalTicket:
        response = self._call(
            "GET", f"{TABLE}/{remote_id}", params={"sysparm_fields": FIELDS, "sysparm_exclude_reference_link": "true"}
        )
        return self._ticket(self._result(response))

    def webhook_remote_id(self, payload: Any) -> str:
        if isinstance(payload, dict) and isinstance(payload.get("sys_id"), str):
            return payload["sys_id"]
        return super().webhook_remote_id(payload)
