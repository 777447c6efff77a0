"""The local control socket of a running service: `sosie status`, `sosie press`.

A Unix stream socket, readable and writable by its owner only (mode 0600, created under a
restrictive umask so it is never more open, even for an instant). Requests and replies are JSON
objects, one per line: ``{"command": "status"}`` -> ``{"ok": true, "state": "ready", ...}``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SOCKET_NAME = "control.sock"
MAX_REQUEST = 64 * 1024

Handler = Callable[[dict[str, Any]], dict[str, Any]]


class ControlError(RuntimeError):
    """The control socket cannot be used (one line)."""


def default_socket_path() -> Path:
    """$SOSIE_SOCKET, else systemd's $RUNTIME_DIRECTORY, /run/sosie (root) or $XDG_RUNTIME_DIR."""
    env = os.environ.get("SOSIE_SOCKET")
    if env:
        return Path(env)
    runtime = os.environ.get("RUNTIME_DIRECTORY")
    if runtime:
        return Path(runtime.split(":")[0]) / SOCKET_NAME
    if os.geteuid() == 0:
        return Path("/run/sosie") / SOCKET_NAME
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return Path(xdg) / "sosie" / SOCKET_NAME
    return Path(f"/tmp/sosie-{os.geteuid()}") / SOCKET_NAME


class ControlServer:
    """Serve `handler(request) -> reply` on a Unix socket in a background thread."""

    def __init__(self, path: Path, handler: Handler) -> None:
        self.path = Path(path)
        self.handler = handler
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        path = self.path
        if not path.parent.exists():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _remove_stale(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        old_umask = os.umask(0o177)
        try:
            sock.bind(str(path))
        except OSError as exc:
            sock.close()
            raise ControlError(f"cannot create control socket {path}: {exc.strerror}") from None
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o600)
        sock.listen(8)
        sock.settimeout(0.2)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="control-socket", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            with conn:
                conn.settimeout(5)
                try:
                    self._converse(conn)
                except OSError as exc:
                    log.debug("control socket: %s", exc)

    def _converse(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        while True:
            line = reader.readline(MAX_REQUEST + 1)
            if not line:
                return
            reply = self._reply(line)
            conn.sendall(json.dumps(reply).encode() + b"\n")

    def _reply(self, line: bytes) -> dict[str, Any]:
        if len(line) > MAX_REQUEST:
            return {"ok": False, "error": "request too long"}
        try:
            request = json.loads(line)
        except ValueError:
            return {"ok": False, "error": "not a JSON object"}
        if not isinstance(request, dict) or not isinstance(request.get("command"), str):
            return {"ok": False, "error": 'expected {"command": "..."}'}
        try:
            return self.handler(request)
        except Exception as exc:  # never let a request take the service down
            log.exception("control request %r failed", request.get("command"))
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}

    def close(self) -> None:
        self._stop.set()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        if self._thread is not None:
            self._thread.join(2)
        with contextlib.suppress(FileNotFoundError):
            if self._sock is not None:
                self.path.unlink()
        self._sock = None


def _remove_stale(path: Path) -> None:
    """Remove a socket left by a dead service; refuse if a live one answers there."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ControlError(f"control socket path {path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1)
    try:
        probe.connect(str(path))
    except OSError:
        path.unlink()
        return
    finally:
        probe.close()
    raise ControlError(f"another sosie service is already running (socket {path})")


def request(path: Path, command: str, timeout: float = 10.0, **args: Any) -> dict[str, Any]:
    """Send one command to the service at `path` and return its reply."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(str(path))
        except FileNotFoundError:
            raise ControlError(f"no running sosie service (no control socket at {path})") from None
        except PermissionError:
            raise ControlError(
                f"permission denied on {path}: run as the service's user (e.g. with sudo)"
            ) from None
        except ConnectionRefusedError:
            raise ControlError(f"no sosie service is listening on {path}") from None
        sock.sendall(json.dumps({"command": command, **args}).encode() + b"\n")
        data = sock.makefile("rb").readline(MAX_REQUEST)
    except TimeoutError:
        raise ControlError(f"the service on {path} did not answer within {timeout:g} s") from None
    except OSError as exc:
        raise ControlError(f"control socket {path}: {exc.strerror or exc}") from None
    finally:
        sock.close()
    if not data:
        raise ControlError(f"the service on {path} closed the connection without answering")
    try:
        reply = json.loads(data)
    except ValueError:
        raise ControlError(f"the service on {path} sent something that is not JSON") from None
    if not isinstance(reply, dict):
        raise ControlError(f"the service on {path} sent an unexpected reply")
    return reply
