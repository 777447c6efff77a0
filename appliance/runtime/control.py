"""What the control socket's commands do: `status` and `press` (see control_socket.py).

The handler sees the service only through two functions the composition root hands it
(`appliance.runtime.installation`): the status snapshot and a press that waits for its answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from appliance.runtime.service import PressAnswer


class ControlHandler:
    """`handler(request) -> reply` for a service's control socket."""

    def __init__(self, status: Callable[[], dict[str, Any]],
                 press: Callable[[str], PressAnswer]) -> None:
        self.status = status  # the snapshot `sosie status` shows (Service.status)
        self.press = press  # a press from `source`, answered once the loop took or ignored it

    def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        command = request.get("command")
        if command == "status":
            return self.status()
        if command == "press":
            answer = self.press("socket")
            return {"ok": True, "state": answer.state.value, "taken": answer.taken,
                    "accepted": answer.taken, "reason": answer.reason}
        return {"ok": False, "error": f"unknown command {command!r} (known: status, press)"}
