"""`sosie doctor`: check every part of the appliance and say what is wrong in plain words.

Each check gives `ok`, `note` (worth knowing, not a problem) or `PROBLEM` with a one-line
explanation and, where there is one, what to do. When a service is already running, the
camera, printer and pins belong to it: the doctor asks it instead of opening them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.errors import one_line
from appliance.parts.diagnosis import Finding

OK, NOTE, PROBLEM = "ok", "note", "PROBLEM"
LEVELS = {"ok": OK, "note": NOTE, "problem": PROBLEM}


@dataclass
class Check:
    part: str
    level: str
    message: str


class Doctor:
    def __init__(self, echo: Callable[[str], None] = print) -> None:
        self.checks: list[Check] = []
        self.echo = echo

    def report(self, part: str, level: str, message: str) -> None:
        self.checks.append(Check(part, level, message))
        self.echo(f"{level:>7}  {part:<10} {message}")

    def findings(self, part: str, findings: list[Finding]) -> None:
        """Report what a part's `diagnose()` found."""
        for finding in findings:
            self.report(part, LEVELS[finding.level], finding.message)

    @property
    def problems(self) -> int:
        return sum(c.level == PROBLEM for c in self.checks)


def run_doctor(config_file: Path | None, *, socket: Path | None = None,
               corpus: Path | None = None, echo: Callable[[str], None] = print,
               pin_factory: Any = None) -> int:
    doc = Doctor(echo)
    settings = check_config(doc, config_file)
    if settings is None:
        echo("fix the configuration first; nothing else was checked")
        return 1
    running = check_service(doc, settings, socket)
    analyzer = check_models(doc, settings)
    check_corpus(doc, settings, corpus)
    if running:
        doc.report("camera", NOTE, "in use by the running service (see its status above)")
        doc.report("printer", NOTE, "in use by the running service")
        doc.report("pins", NOTE, "in use by the running service")
    else:
        check_camera(doc, settings, analyzer)
        check_printer(doc, settings)
        check_pins(doc, settings, pin_factory)
    check_poweroff(doc, settings)
    check_privacy(doc, settings)
    check_conjure(doc, settings)
    if doc.problems:
        echo(f"{doc.problems} problem(s) found")
        return 1
    echo("everything looks fine")
    return 0


def check_config(doc: Doctor, config_file: Path | None) -> Any:
    from appliance.config import ConfigError
    from appliance.settings import load_settings

    try:
        settings = load_settings(config_file)
    except ConfigError as exc:
        doc.report("config", PROBLEM, str(exc))
        return None
    where = settings.source or "packaged defaults only (no user file)"
    doc.report("config", OK, f"{where}: every key valid")
    return settings


def check_service(doc: Doctor, settings: Any, socket: Path | None) -> bool:
    from appliance.runtime.control_socket import (
        ControlError,
        ServiceRefused,
        default_socket_path,
        request,
    )

    path = socket or settings.service.socket or default_socket_path()
    try:
        status = request(path, "status", timeout=3)
    except ServiceRefused as exc:  # running, but it would not say how it is
        doc.report("service", PROBLEM, f"running but {str(exc)[len('the service '):]}")
        return True
    except ControlError as exc:
        doc.report("service", NOTE, f"not running ({exc})")
        return False
    state = status.get("state")
    fault = status.get("last_fault") or {}
    if state == "fault":
        doc.report("service", PROBLEM, f"running but in fault: {fault.get('part')}: "
                   f"{fault.get('reason')} (it keeps retrying)")
    else:
        doc.report("service", OK, f"running, {state}, {status.get('tickets_printed', 0)} "
                   f"tickets printed ({path})")
    return True


def check_models(doc: Doctor, settings: Any) -> Any:
    try:
        from appliance.faces.analyzer import FaceAnalyzer
        from appliance.faces.model_files import model_paths

        paths = model_paths(settings.faces)
        analyzer = FaceAnalyzer(settings.faces)
        import numpy as np

        analyzer.analyze(np.zeros((64, 64, 3), np.uint8))
    except Exception as exc:
        doc.report("models", PROBLEM, f"face models cannot be loaded: {one_line(exc)} "
                   "(reinstall face-recognition-models or set faces.*_model)")
        return None
    names = ", ".join(Path(p).name for p in paths.values())
    doc.report("models", OK, f"loaded {names}")
    check_descriptor(doc, settings, analyzer)
    return analyzer


def check_descriptor(doc: Doctor, settings: Any, analyzer: Any, repeats: int = 3) -> None:
    """Which engine runs the descriptor network and how long one face takes, against the other
    engine on this machine (dlib-bin has no BLAS: dlib's own code is several times slower)."""
    import dataclasses
    import time

    import numpy as np

    from appliance.faces.analyzer import FaceAnalyzer

    chip = np.random.default_rng(0).integers(0, 256, (150, 150, 3), np.uint8)

    def per_face(engine: Any) -> float:
        engine.describe(chip)  # warm
        start = time.perf_counter()
        for _ in range(repeats):
            engine.describe(chip)
        return (time.perf_counter() - start) / repeats * 1000

    configured, used = settings.faces.descriptor_engine, analyzer.descriptor_engine
    other_name = "dlib" if used == "numpy" else "numpy"
    try:
        other = FaceAnalyzer(dataclasses.replace(settings.faces, descriptor_engine=other_name))
        ours_ms, other_ms = per_face(analyzer), per_face(other)
    except Exception as exc:
        doc.report("descriptor", NOTE, f"{used} engine; could not time it: {one_line(exc)}")
        return
    text = f"{used} engine: {ours_ms:.0f} ms per face ({other_name}: {other_ms:.0f} ms)"
    if configured != used:
        doc.report("descriptor", NOTE, f"{text}; faces.descriptor_engine is {configured} but "
                   "that engine refused the model file (see the log), so dlib runs it")
    elif other_ms < 0.8 * ours_ms:
        doc.report("descriptor", NOTE, f"{text}: set faces.descriptor_engine: {other_name}, "
                   "it is faster on this machine")
    else:
        doc.report("descriptor", OK, text)


def check_corpus(doc: Doctor, settings: Any, path: Path | None = None) -> None:
    path = path or getattr(settings.corpus, "path", None)
    if not path:
        from appliance.paths import cache_dir

        demo = cache_dir() / "demo-corpus"
        doc.report("corpus", NOTE, "corpus.path is not set: the small demo corpus is used"
                   + ("" if demo.exists() else " (built on first start)")
                   + "; build yours with `sosie build`")
        if not demo.exists():
            return
        path = demo
    try:
        from appliance.runtime.appliance import make_scanner, open_corpus

        corpus = open_corpus(Path(path), settings.faces)
        try:
            corpus.warm()  # every row and the thumbnail index, as the first search would
        except Exception:
            corpus.close()
            raise
    except Exception as exc:
        doc.report("corpus", PROBLEM, one_line(exc))
        return
    try:
        kind = "synthetic test corpus" if corpus.synthetic else "corpus"
        try:  # the scanner `sosie run` makes: the `search` section picks kernel and threads
            scanner = make_scanner(corpus, settings.search)
        except ValueError as exc:
            doc.report("search", PROBLEM, f"search.kernel: {one_line(exc)}")
            return
        threads = getattr(scanner, "threads", None)
        doc.report("corpus", OK, f"{kind} {path}: {corpus.count} faces, {corpus.dim}-D, "
                   f"{getattr(scanner, 'kernel', '?')} scan kernel"
                   + (f", {threads} threads" if threads and threads > 1 else ""))
        if corpus.synthetic:
            doc.report("corpus", NOTE, "a synthetic corpus has placeholder faces: fine for "
                       "benchmarks, not for visitors")
        source = corpus.manifest.get("source") or {}
        if source.get("generator"):  # sosie build dcgan:...: which generator drew the faces
            from appliance.generator.provenance import describe_weights

            doc.report("corpus", NOTE, "faces drawn with " + describe_weights(
                str(source.get("weights")), [settings.generator.weights], source.get("trained")))
    finally:
        corpus.close()


def check_camera(doc: Doctor, settings: Any, analyzer: Any) -> None:
    from appliance.parts.camera import CameraError, make_camera

    try:
        camera = make_camera(settings.camera)
    except CameraError as exc:
        doc.report("camera", PROBLEM, f"{exc} (check the cable/ribbon and camera.backend)")
        return
    count = (lambda frame: len(analyzer.detect(frame))) if analyzer is not None else None
    doc.findings("camera", camera.diagnose(count))


def check_pins(doc: Doctor, settings: Any, pin_factory: Any = None) -> None:
    from appliance.parts.pins import diagnose_pins

    doc.findings("pins", diagnose_pins(settings.controls, pin_factory))


def check_printer(doc: Doctor, settings: Any) -> None:
    """The printer's own diagnosis (it only looks: the file backend's device is not opened)."""
    try:
        from appliance.parts.printer import make_printer

        printer = make_printer(settings.printer)
    except Exception as exc:
        doc.report("printer", PROBLEM, one_line(exc))
        return
    try:
        doc.findings("printer", printer.diagnose())
    finally:
        with contextlib.suppress(Exception):
            printer.close()


def check_poweroff(doc: Doctor, settings: Any, *, run: Any = None,
                   euid: int | None = None) -> None:
    from appliance.runtime.poweroff import diagnose_poweroff

    kwargs = {"run": run} if run is not None else {}
    doc.findings("poweroff", diagnose_poweroff(settings.service, settings.controls, euid=euid,
                                               **kwargs))


def check_privacy(doc: Doctor, settings: Any) -> None:
    s = settings.service
    if s.keep_captures:
        writable = s.captures_dir is not None and _writable(s.captures_dir)
        level = NOTE if writable else PROBLEM
        doc.report("privacy", level, f"visitors' photos are KEPT in {s.captures_dir}"
                   + ("" if writable else " (not writable)") + ": tell your visitors")
    else:
        doc.report("privacy", OK, "visitors' photos and descriptors stay in memory only")


def check_conjure(doc: Doctor, settings: Any) -> None:
    """`ticket.conjure: after` needs the cma package and the generator's weights (read only)."""
    if settings.ticket.conjure != "after":
        return
    from appliance.conjure.search import require_cma
    from appliance.errors import one_line
    from appliance.generator.dcgan import DCGAN

    try:
        require_cma()
        DCGAN.load(settings.generator.weights)
    except Exception as exc:
        doc.report("conjure", PROBLEM, f"ticket.conjure is after but it cannot run, so no "
                   f"conjured double is printed: {one_line(exc)}")
        return
    doc.report("conjure", OK, f"a conjured double follows each ticket (up to "
               f"{settings.ticket.conjure_seconds:g} s of search)")


def _writable(path: Path) -> bool:
    path = Path(path)
    while not path.exists():
        path = path.parent
    return os.access(path, os.W_OK)
