"""The local control socket of a running service: `sosie status`, `sosie press`.

A Unix stream socket, readable and writable by its owner only (mode 0600, created under a
restrictive umask so it is never more open, even for an instant). Requests and replies are JSON
objects, one per line: ``{"command": "status"}`` -> ``{"ok": true, "state": "ready", ...}``.

Every client is served by its own short-lived thread, at most `MAX_CLIENTS` at once, and has
`CLIENT_SECONDS` to send each request line (at most `MAX_REQUEST` bytes, nested at most
`MAX_DEPTH` deep) and read its reply; then it is disconnected. So a client that sends one byte
every few seconds, never reads, or sends a line of a thousand `[` costs itself its connection
and nobody else anything. The accepting thread beats a heartbeat that the service's watchdog
pings depend on (`problem()`): a dead or stuck socket gets the service restarted by systemd.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance.errors import one_line

log = logging.getLogger(__name__)

SOCKET_NAME = "control.sock"
MAX_REQUEST = 64 * 1024  # bytes per request line
MAX_DEPTH = 8  # nesting of arrays/objects in a request (JSON parsers recurse)
MAX_CLIENTS = 8  # served at once; more are told to come back later
CLIENT_SECONDS = 5.0  # to send a whole request line, and to take the reply
ACCEPT_POLL = 0.2  # seconds between heartbeats of the accepting thread
STALE_HEARTBEAT = 10.0  # an accepting thread silent this long is stuck

Handler = Callable[[dict[str, Any]], dict[str, Any]]


class ControlError(RuntimeError):
    """The control socket cannot be used (one line)."""


class ServiceRefused(ControlError):
    """The service answered, with {"ok": false, "error": ...} (one line quoting it)."""


class RequestError(ValueError):
    """A request line that is not one acceptable JSON object (the reply says why)."""


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


def parse_request(line: bytes) -> dict[str, Any]:
    """One request line as a dict with a string "command"; RequestError says what is wrong.

    The nesting depth is counted before the JSON parser sees the line, so no line can make
    it recurse deeply (a thousand `[` once killed the socket with a RecursionError).
    """
    if len(line) > MAX_REQUEST:
        raise RequestError(f"request longer than {MAX_REQUEST} bytes")
    if nesting_depth(line) > MAX_DEPTH:
        raise RequestError(f"request nested deeper than {MAX_DEPTH}")
    try:
        request = json.loads(line)
    except (ValueError, RecursionError):
        raise RequestError("not a JSON object") from None
    if not isinstance(request, dict) or not isinstance(request.get("command"), str):
        raise RequestError('expected {"command": "..."}')
    return request


def nesting_depth(data: bytes) -> int:
    """The deepest nesting of `[`/`{` outside JSON strings (the count stops past MAX_DEPTH)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:
                return deepest
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


class ClientGone(Exception):
    """The client closed, timed out or broke the protocol: drop its connection."""


class LineReader:
    """Request lines from one client, each within a deadline and a size limit."""

    def __init__(self, conn: socket.socket, seconds: float, limit: int) -> None:
        self.conn = conn
        self.seconds = seconds
        self.limit = limit
        self._buffer = b""

    def line(self) -> bytes | None:
        """The next line (without its newline); None at a clean end of the conversation."""
        deadline = time.monotonic() + self.seconds
        while b"\n" not in self._buffer:
            if len(self._buffer) > self.limit:
                raise RequestError(f"request longer than {self.limit} bytes")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ClientGone("too slow")
            self.conn.settimeout(remaining)
            try:
                data = self.conn.recv(4096)
            except TimeoutError:
                raise ClientGone("too slow") from None
            if not data:
                if self._buffer.strip():
                    raise ClientGone("closed mid-request")
                return None
            self._buffer += data
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line


class ControlServer:
    """Serve `handler(request) -> reply` on a Unix socket, one thread per client."""

    def __init__(self, path: Path, handler: Handler, *, client_seconds: float = CLIENT_SECONDS,
                 max_clients: int = MAX_CLIENTS) -> None:
        self.path = Path(path)
        self.handler = handler
        self.client_seconds = client_seconds
        self._slots = threading.BoundedSemaphore(max_clients)
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._heartbeat = time.monotonic()
        self.clients_dropped = 0  # too slow, too big, or too many

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
        sock.listen(16)
        sock.settimeout(ACCEPT_POLL)
        self._sock = sock
        self._heartbeat = time.monotonic()
        self._thread = threading.Thread(target=self._accept, name="control-socket", daemon=True)
        self._thread.start()

    def problem(self) -> str | None:
        """Why the socket is not serving (for the watchdog), or None when it is."""
        if self._sock is None or self._thread is None:
            return None  # not started (or closed): nothing to vouch for
        if not self._thread.is_alive():
            return "the control socket's thread has died"
        silent = time.monotonic() - self._heartbeat
        if silent > STALE_HEARTBEAT:
            return f"the control socket has not accepted for {silent:.0f} s"
        return None

    def _accept(self) -> None:
        sock = self._sock
        assert sock is not None
        while not self._stop.is_set():
            self._heartbeat = time.monotonic()
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    break
                log.exception("control socket: accept failed")
                time.sleep(ACCEPT_POLL)
                continue
            try:
                self._dispatch(conn)
            except Exception:  # the accepting thread must outlive any one client
                log.exception("control socket: cannot serve a client")
                with contextlib.suppress(OSError):
                    conn.close()

    def _dispatch(self, conn: socket.socket) -> None:
        if not self._slots.acquire(blocking=False):
            self.clients_dropped += 1
            conn.settimeout(0.2)
            with contextlib.suppress(OSError), conn:
                conn.sendall(_encode({"ok": False, "error": "too many clients; try again"}))
                _hang_up(conn, seconds=0.1, most=MAX_REQUEST)
            return
        try:
            threading.Thread(target=self._serve, args=(conn,), name="control-client",
                             daemon=True).start()
        except BaseException:
            self._slots.release()
            raise

    def _serve(self, conn: socket.socket) -> None:
        try:
            with conn:
                self._converse(conn)
        except (ClientGone, RequestError) as exc:
            self.clients_dropped += 1
            log.debug("control socket: client dropped: %s", exc)
        except OSError as exc:
            log.debug("control socket: %s", exc)
        except Exception:  # never let a client take anything else down
            log.exception("control socket: client failed")
        finally:
            self._slots.release()

    def _converse(self, conn: socket.socket) -> None:
        reader = LineReader(conn, self.client_seconds, MAX_REQUEST)
        while not self._stop.is_set():
            try:
                line = reader.line()
            except RequestError as exc:  # too long: say so, then hang up
                self._send(conn, {"ok": False, "error": str(exc)})
                _hang_up(conn)
                raise
            if line is None:
                return
            self._send(conn, self._reply(line))

    def _send(self, conn: socket.socket, reply: dict[str, Any]) -> None:
        conn.settimeout(self.client_seconds)
        try:
            conn.sendall(_encode(reply))
        except TimeoutError:
            raise ClientGone("does not read its replies") from None

    def _reply(self, line: bytes) -> dict[str, Any]:
        try:
            request = parse_request(line)
        except RequestError as exc:
            return {"ok": False, "error": str(exc)}
        try:
            return self.handler(request)
        except Exception as exc:  # never let a request take the service down
            log.exception("control request %r failed", request.get("command"))
            return {"ok": False, "error": one_line(exc)}

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


def _hang_up(conn: socket.socket, seconds: float = 0.5, most: int = 1 << 20) -> None:
    """Close our side, then read briefly what the client still sends (unread input would
    make the kernel reset the connection before the client reads our last reply)."""
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + seconds
        while most > 0 and (remaining := deadline - time.monotonic()) > 0:
            conn.settimeout(remaining)
            data = conn.recv(65536)
            if not data:
                return
            most -= len(data)


def _encode(reply: dict[str, Any]) -> bytes:
    return json.dumps(reply).encode() + b"\n"


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
    except (ValueError, RecursionError):
        raise ControlError(f"the service on {path} sent something that is not JSON") from None
    if not isinstance(reply, dict):
        raise ControlError(f"the service on {path} sent an unexpected reply")
    if reply.get("ok") is False:  # {"ok": false, "error": "too many clients; try again"}
        error = " ".join(str(reply.get("error") or "no reason given").split())[:200]
        raise ServiceRefused(f"the service on {path} answered {command!r} with an error: {error}")
    return reply
