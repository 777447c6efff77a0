"""What the control socket's commands do: `status` and `press` (see control_socket.py)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from appliance.runtime.service import Service


class ControlHandler:
    """`handler(request) -> reply` for a service's control socket."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        command = request.get("command")
        if command == "status":
            return self.status()
        if command == "press":
            answer = self.service.press_and_wait("socket")
            return {"ok": True, "state": answer.state.value, "taken": answer.taken,
                    "accepted": answer.taken, "reason": answer.reason}
        return {"ok": False, "error": f"unknown command {command!r} (known: status, press)"}

    def status(self) -> dict[str, Any]:
        """What `sosie status` shows."""
        service = self.service
        m = service.machine
        c = m.counters
        now = service.clock()
        reply: dict[str, Any] = {
            "ok": True,
            "state": m.state.value,
            "fault": m.fault.value if m.fault else None,
            "tickets_printed": c.tickets_printed,
            "visits": c.visits,
            "presses": c.presses,
            "presses_ignored": c.presses_ignored,
            "no_face": c.no_face,
            "faults": c.faults,
            "last_fault": None,
            "uptime_seconds": round(now - service.started_at, 1),
        }
        if m.last_fault is not None:
            kind, reason = m.last_fault
            at = service.last_fault_at
            reply["last_fault"] = {"part": kind.value, "reason": reason,
                                   "seconds_ago": None if at is None else round(now - at, 1)}
        visit = service.last_visit
        if visit is not None:
            reply["last_visit"] = {"outcome": visit.outcome,
                                   "ms": {k: round(1000 * t, 1) for k, t in visit.timings.items()}}
            if visit.matches:
                reply["last_visit"]["best_distance"] = round(visit.matches[0].distance, 4)
        with contextlib.suppress(Exception):
            reply.update(service.parts.describe())
        return reply
