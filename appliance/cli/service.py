"""The appliance commands: `sosie run`, `demo`, `doctor`, `status`, `press`.

    sosie run [--config FILE]                    the service (systemd Type=notify)
    sosie demo [--presses N] [--out DIR] [--image PHOTO] [--config FILE]
    sosie doctor [--config FILE]                 check camera, printer, pins, models, corpus
    sosie status [--json] [--socket PATH]        ask the running service
    sosie press [--socket PATH]                  a button press without the button
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from appliance.cli import UsageError


def register(subparsers: Any) -> None:
    run = subparsers.add_parser(
        "run", help="run the appliance (the service started by systemd)",
        description="Run the appliance: tell systemd it is running (READY=1), load the face "
        "models, open the corpus (its rows checked on a thread), open the camera and printer, "
        "then serve button "
        "presses until stopped (SIGTERM). Faults are shown on the LED and in systemd's status "
        "line, and retried; it never exits on its own.",
    )
    _config_arg(run)
    run.add_argument("--socket", type=Path, metavar="PATH",
                     help="control socket (default: service.socket, $RUNTIME_DIRECTORY/"
                     "control.sock or /run/sosie/control.sock)")
    run.add_argument("--corpus", type=Path, metavar="DIR", help="corpus (overrides corpus.path)")
    run.add_argument("-v", "--verbose", action="store_true", help="log every state change")
    run.set_defaults(func=cmd_run)

    demo = subparsers.add_parser(
        "demo", help="run the appliance on the embedded demo: simulated button, image camera, "
        "virtual printer",
        description="Run the real appliance loop on the embedded demo corpus with a simulated "
        "button (Enter in a terminal, or --presses N), the camera reading a photo (default: the "
        "public-domain NASA astronaut portrait shipped in appliance/data, not in the demo corpus "
        "of generated faces) and the virtual printer writing PNG "
        "tickets. Prints where the tickets are.",
    )
    demo.add_argument("--presses", type=int, metavar="N",
                      help="press the button N times, then stop (default: interactive in a "
                      "terminal, else 1)")
    demo.add_argument("--out", type=Path, metavar="DIR",
                      help="where tickets go (default: <cache>/demo-tickets)")
    demo.add_argument("--image", type=Path, metavar="PHOTO",
                      help="the photo the camera sees (a file or a folder of photos)")
    demo.add_argument("--corpus", type=Path, metavar="DIR",
                      help="search this corpus instead of the demo corpus")
    _config_arg(demo)
    demo.set_defaults(func=cmd_demo)

    doctor = subparsers.add_parser(
        "doctor", help="check camera, printer, button pins, models, corpus and config",
        description="Check every part of the appliance and say in plain words what is wrong. "
        "Exit status 1 when something needs fixing.",
    )
    _config_arg(doctor)
    doctor.add_argument("--socket", type=Path, metavar="PATH", help="control socket to look for")
    doctor.add_argument("--corpus", type=Path, metavar="DIR", help="corpus (overrides corpus.path)")
    doctor.set_defaults(func=cmd_doctor)

    status = subparsers.add_parser(
        "status", help="state, tickets printed, presses ignored, last fault, uptime",
        description="Ask the running service (over its control socket) how it is doing.",
    )
    status.add_argument("--json", action="store_true", help="print the raw JSON reply")
    status.add_argument("--socket", type=Path, metavar="PATH", help="control socket")
    status.set_defaults(func=cmd_status)

    press = subparsers.add_parser(
        "press", help="press the button of the running service",
        description="Start a visit as if the button were pressed (installers, smoke tests). "
        "Exit status 1 when the service is busy and ignores it.",
    )
    press.add_argument("--socket", type=Path, metavar="PATH", help="control socket")
    press.add_argument("--wait", action="store_true",
                       help="wait until the visit is over and report its outcome")
    press.set_defaults(func=cmd_press)


def _config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="configuration file (default: $SOSIE_CONFIG, "
                        "/boot/firmware/sosie.yaml or /etc/sosie/sosie.yaml if present)")


def _settings(args: argparse.Namespace, search: bool = True) -> Any:
    from appliance.config import ConfigError
    from appliance.settings import load_settings

    try:
        return load_settings(args.config, search=search)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def _socket_path(args: argparse.Namespace) -> Path:
    from appliance.runtime.control_socket import default_socket_path

    if getattr(args, "socket", None):
        return args.socket
    try:
        from appliance.settings import load_settings

        configured = load_settings(getattr(args, "config", None)).service.socket
    except Exception:  # status/press must work even with a broken config file
        configured = None
    return configured or default_socket_path()


# ---------------------------------------------------------------------------------------------
# sosie run


def cmd_run(args: argparse.Namespace) -> int:
    from appliance.config import ConfigError
    from appliance.parts.controls import ControlsError
    from appliance.runtime.control_socket import ControlError, ControlServer, default_socket_path
    from appliance.runtime.installation import Overrides, assemble

    settings = _settings(args)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    log = logging.getLogger("sosie.run")
    if settings.source:
        log.info("configuration: %s", settings.source)
    try:
        installation = assemble(settings, Overrides(corpus_path=args.corpus))
    except (ConfigError, ControlsError) as exc:
        print(f"sosie run: {exc}", file=sys.stderr)
        return 1
    service = installation.service
    socket_path = args.socket or settings.service.socket or default_socket_path()
    server = ControlServer(socket_path, installation.handler)
    try:
        server.start()
        service.watch(server.problem)
        log.info("control socket: %s", server.path)
    except ControlError as exc:
        if "already running" in str(exc):
            print(f"sosie run: {exc}", file=sys.stderr)
            installation.close()
            installation.controls.close()
            return 1
        log.warning("%s; `sosie status`/`sosie press` will not work", exc)
    try:
        return service.run()
    finally:
        installation.close()
        server.close()


# ---------------------------------------------------------------------------------------------
# sosie demo


def cmd_demo(args: argparse.Namespace) -> int:
    from appliance.paths import cache_dir
    from appliance.runtime.demo import Demo

    if args.presses is not None and args.presses < 0:
        raise UsageError(f"--presses must be >= 0, got {args.presses}")
    if args.image is not None and not args.image.exists():
        raise UsageError(f"--image {args.image}: no such file or folder")
    settings = _settings(args, search=False)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    out = args.out or cache_dir() / "demo-tickets"
    presses = args.presses
    if presses is None and not sys.stdin.isatty():
        presses = 1  # never wait for a keyboard that is not there
    try:
        demo = Demo(settings, image=args.image, out_dir=out, corpus_path=args.corpus)
    except Exception as exc:
        print(f"sosie demo: {exc}", file=sys.stderr)
        return 1
    return demo.run(presses)


# ---------------------------------------------------------------------------------------------
# sosie status / press


def cmd_status(args: argparse.Namespace) -> int:
    from appliance.runtime.control_socket import ControlError, request

    path = _socket_path(args)
    try:
        reply = request(path, "status")
    except ControlError as exc:
        if args.json:  # JSON in every case: the error as the service's own replies put it
            print(json.dumps({"ok": False, "error": str(exc)}, indent=2, sort_keys=True))
        print(f"sosie status: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(reply, indent=2, sort_keys=True))
        return 0
    print(format_status(reply))
    return 0


def format_status(s: dict[str, Any]) -> str:
    state = s.get("state", "?")
    if s.get("fault"):
        state += f" ({s['fault']})"
    lines = [
        f"state:            {state}",
        f"uptime:           {_duration(s.get('uptime_seconds', 0))}",
        f"tickets printed:  {s.get('tickets_printed', 0)}",
        f"visits:           {s.get('visits', 0)} ({s.get('no_face', 0)} without a face)",
        f"presses ignored:  {s.get('presses_ignored', 0)} (while busy)",
    ]
    fault = s.get("last_fault")
    if fault:
        ago = fault.get("seconds_ago")
        when = f", {_duration(ago)} ago" if ago is not None else ""
        lines.append(f"last fault:       {fault['part']}: {fault['reason']}{when}")
    else:
        lines.append("last fault:       none")
    if s.get("corpus_faces") is not None:
        lines.append(f"corpus:           {s['corpus_faces']} faces ({s.get('corpus', '')}), "
                     f"{s.get('kernel')} kernel")
    if s.get("corpus_check") not in (None, "ok"):  # checking, or what the check found
        lines.append(f"corpus check:     {s['corpus_check']}")
    visit = s.get("last_visit")
    if visit:
        ms = visit.get("ms", {})
        stages = ", ".join(f"{k} {v:.0f}" for k, v in ms.items() if k != "total")
        lines.append(f"last visit:       {visit.get('outcome')} in {ms.get('total', 0):.0f} ms"
                     f" ({stages})")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    seconds = int(seconds or 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h {minutes} min"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def cmd_press(args: argparse.Namespace) -> int:
    from appliance.runtime.control_socket import ControlError, request
    from appliance.words import state_phrase

    path = _socket_path(args)
    try:
        before = request(path, "status")
        reply = request(path, "press")
        if not reply.get("taken", reply.get("accepted")):
            state, reason = reply.get("state", "?"), reply.get("reason")
            why = f" ({reason})" if reason and reason != state else ""
            print(f"ignored: the appliance is {state_phrase(state)}{why}")
            return 1
        print("pressed")
        if args.wait:
            return _wait_for_visit(path, before.get("visits", 0) + 1)
    except ControlError as exc:
        print(f"sosie press: {exc}", file=sys.stderr)
        return 1
    return 0


def _wait_for_visit(path: Path, visit: int, timeout: float = 180.0) -> int:
    from appliance.runtime.control_socket import request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = request(path, "status")
        if s.get("state") in {"ready", "cooldown", "fault"} and s.get("visits", 0) >= visit:
            outcome = (s.get("last_visit") or {}).get("outcome", s.get("state"))
            print(f"visit over: {outcome}")
            return 0 if outcome in {"printed", "no face"} else 1
        time.sleep(0.2)
    print(f"the visit did not end within {timeout:.0f} s")
    return 1


# ---------------------------------------------------------------------------------------------
# sosie doctor


def cmd_doctor(args: argparse.Namespace) -> int:
    from appliance.runtime.doctor import run_doctor

    return run_doctor(args.config, socket=args.socket, corpus=args.corpus)
