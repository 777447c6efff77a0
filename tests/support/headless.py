"""Drive a headless Chromium over the DevTools protocol: load a page, collect console errors and
failed requests, evaluate JavaScript, take screenshots. Used by the map tests and bench/map.py.

Needs the `chromium` binary (Debian package) and the `websocket-client` package (test extra).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BINARIES = ("chromium", "chromium-browser", "google-chrome", "chrome")
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--use-angle=swiftshader",  # WebGL on the CPU (SwiftShader) since the GPU is disabled
    "--enable-unsafe-swiftshader",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--mute-audio",
    "--hide-scrollbars",
    "--remote-allow-origins=*",
    "--proxy-server=127.0.0.1:9",  # anything not local fails fast instead of reaching out
)


class BrowserError(RuntimeError):
    """Chromium could not be started or did not answer."""


def find_chromium() -> str | None:
    """Path of a Chromium-like browser, or None."""
    env = os.environ.get("SOSIE_CHROMIUM")
    if env:
        return env
    for name in BINARIES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageLog:
    """What a page reported: console errors/warnings, uncaught exceptions, failed requests."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


class Browser:
    """One headless Chromium with one page; use as a context manager."""

    def __init__(self, width: int = 1280, height: int = 800, binary: str | None = None,
                 timeout: float = 60.0) -> None:
        self.width, self.height, self.timeout = width, height, timeout
        self.binary = binary or find_chromium()
        if not self.binary:
            raise BrowserError("no chromium binary found (apt-get install chromium)")
        self.log = PageLog()
        self._profile = tempfile.mkdtemp(prefix="sosie-chromium-")
        self._next_id = 0
        self._events: list[dict] = []
        self._requests: dict[str, str] = {}
        self._proc: subprocess.Popen | None = None
        self._ws: Any = None

    # -----------------------------------------------------------------------------------------
    def __enter__(self) -> Browser:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        import websocket  # websocket-client

        args = [self.binary, *FLAGS, f"--user-data-dir={self._profile}",
                "--remote-debugging-port=0", f"--window-size={self.width},{self.height}",
                "about:blank"]
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        port_file = Path(self._profile) / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while not port_file.exists() or not port_file.read_text().strip():
            if self._proc.poll() is not None:
                stderr = self._proc.stderr.read() if self._proc.stderr else b""
                err = stderr.decode(errors="replace")[-400:]
                raise BrowserError(f"chromium exited at start ({self._proc.returncode}): {err}")
            if time.monotonic() > deadline:
                raise BrowserError("chromium did not open its DevTools port")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        target = self._page_target(port, deadline)
        self._ws = websocket.create_connection(target, timeout=self.timeout, suppress_origin=True)
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height,
                  deviceScaleFactor=1, mobile=False)

    def _page_target(self, port: int, deadline: float) -> str:
        import urllib.request

        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
                    pages = [t for t in json.load(r) if t.get("type") == "page"]
                if pages:
                    return pages[0]["webSocketDebuggerUrl"]
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise BrowserError("chromium opened no page target")
            time.sleep(0.05)

    def close(self) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                self._ws.close()
            self._ws = None
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            if self._proc.stderr:
                self._proc.stderr.close()
            self._proc = None
        shutil.rmtree(self._profile, ignore_errors=True)

    # -----------------------------------------------------------------------------------------
    def call(self, method: str, **params: Any) -> dict:
        """Send one DevTools command and return its result (events are recorded meanwhile)."""
        self._next_id += 1
        ident = self._next_id
        self._ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout
        while True:
            message = self._receive(deadline)
            if message.get("id") == ident:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error'].get('message')}")
                return message.get("result", {})

    def _receive(self, deadline: float) -> dict:
        if time.monotonic() > deadline:
            raise BrowserError("chromium did not answer in time")
        message = json.loads(self._ws.recv())
        if "method" in message:
            self._record(message["method"], message.get("params", {}))
        return message

    def _record(self, method: str, params: dict) -> None:
        self._events.append({"method": method, "params": params})
        if method == "Runtime.consoleAPICalled":
            args = params.get("args", [])
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in args)
            if params.get("type") in ("error", "assert"):
                self.log.errors.append(f"console.{params['type']}: {text}")
            elif params.get("type") == "warning":
                self.log.warnings.append(text)
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            exc = details.get("exception", {}).get("description") or details.get("text", "")
            self.log.errors.append(f"uncaught: {exc}")
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            if entry.get("level") == "error":
                self.log.errors.append(f"log: {entry.get('text')} {entry.get('url', '')}".strip())
        elif method == "Network.requestWillBeSent":
            url = params.get("request", {}).get("url", "")
            self._requests[params.get("requestId", "")] = url
            if not url.startswith("data:"):
                self.log.requests.append(url)
        elif method == "Network.loadingFailed":
            url = self._requests.get(params.get("requestId", ""), "?")
            if not params.get("canceled"):
                self.log.failed_requests.append(f"{url}: {params.get('errorText')}")

    def wait_event(self, method: str, timeout: float | None = None) -> dict:
        """Wait for the next event named `method` (already received ones are consumed first)."""
        for i, event in enumerate(self._events):
            if event["method"] == method:
                return self._events.pop(i)["params"]
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            message = self._receive(deadline)
            if message.get("method") == method:
                self._events.remove({"method": method, "params": message.get("params", {})})
                return message.get("params", {})

    # -----------------------------------------------------------------------------------------
    def open(self, url: str) -> float:
        """Navigate to `url` and wait for its load event; returns seconds taken."""
        self._events.clear()
        started = time.perf_counter()
        self.call("Page.navigate", url=url)
        self.wait_event("Page.loadEventFired")
        return time.perf_counter() - started

    def evaluate(self, expression: str, await_promise: bool = True) -> Any:
        """Value of a JavaScript expression (promises awaited), or BrowserError on exception."""
        result = self.call("Runtime.evaluate", expression=expression, awaitPromise=await_promise,
                           returnByValue=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"JavaScript failed: {text}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 30.0, interval: float = 0.05) -> Any:
        """Poll a JavaScript expression until it is truthy; its value, or BrowserError."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out waiting for {expression}")
            time.sleep(interval)

    def screenshot(self, path: str | Path | None = None) -> bytes:
        """PNG of the viewport (written to `path` if given)."""
        data = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_bytes(data)
        return data


# ---------------------------------------------------------------------------------------------
# Serving a site, counting textures, and an emulated headset (tests and bench/map.py only)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve(directory: str | Path) -> Iterator[str]:
    """Serve `directory` on 127.0.0.1 (a secure context for WebXR, one origin for WebGL);
    yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


# Counts the bytes of every texture's level 0 that the page allocates (4 per texel, as GPUs pad
# RGB): window.textureLog = {bytes, peak, allocations}.
TEXTURE_LOG_SCRIPT = """
(() => {
  const log = window.textureLog = { bytes: 0, peak: 0, allocations: 0 };
  const sizes = new Map(), bound = new Map();
  const P = WebGLRenderingContext.prototype;
  const active = P.activeTexture, bind = P.bindTexture;
  const image = P.texImage2D, drop = P.deleteTexture;
  P.activeTexture = function (unit) { this._unit = unit; return active.call(this, unit); };
  P.bindTexture = function (target, t) {
    bound.set(this._unit || 0, t);
    return bind.call(this, target, t);
  };
  P.texImage2D = function (...a) {
    const src = a[5];
    const [w, h] = a.length >= 9 ? [a[3], a[4]]
      : [src.naturalWidth || src.width, src.naturalHeight || src.height];
    if (a[1] === 0) {
      sizes.set(bound.get(this._unit || 0), w * h * 4);
      log.allocations++;
      log.bytes = [...sizes.values()].reduce((s, v) => s + v, 0);
      log.peak = Math.max(log.peak, log.bytes);
    }
    return image.apply(this, a);
  };
  P.deleteTexture = function (t) { sizes.delete(t); return drop.call(this, t); };
})();
"""

IWER_BUNDLE = Path(__file__).resolve().parents[2] / ".cache/npm/node_modules/iwer/build/iwer.min.js"

# After the iwer bundle: a Meta Quest 2 with both eyes rendered, as window.xrDevice, and
# aimController(hand, from, to) to point a controller (reference-space metres).
QUEST2_SCRIPT = """
(() => {
  const device = new IWER.XRDevice(IWER.metaQuest2, { stereoEnabled: true });
  device.installRuntime({ forceInstall: true }); // headless Chromium has a WebXR without devices
  window.xrDevice = device;
  window.aimController = (hand, from, to) => {
    const c = device.controllers[hand];
    c.position.set(from[0], from[1], from[2]);
    const q = IWER.lookRotation(IWER.directionTo(
      { x: from[0], y: from[1], z: from[2] }, { x: to[0], y: to[1], z: to[2] }));
    c.quaternion.set(q.x, q.y, q.z, q.w);
  };
})();
"""


def quest2_scripts(bundle: Path = IWER_BUNDLE) -> list[str] | None:
    """The scripts that make a page see an emulated Quest 2 (Meta's Immersive Web Emulation
    Runtime, npm `iwer`, installed by `./dev test` into .cache/npm), or None without it."""
    if not bundle.is_file():
        return None
    return [bundle.read_text(encoding="utf-8"), QUEST2_SCRIPT]
