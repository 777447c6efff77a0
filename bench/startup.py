"""`sosie run` start-up on a cold card: launch -> ready with the corpus out of the page cache.

    .venv/bin/python bench/startup.py --corpus DIR [--reps 3] [--presses 2] [--json out.json]

Each repetition starts the service twice, interleaved: cold (every corpus file evicted from the
page cache first with posix_fadvise(POSIX_FADV_DONTNEED), checked with util-linux `fincore`: a
page another process maps stays, so the residency before the start is printed) and warm (the
files as the previous start left them). Per start: launch -> `ready` (the control socket's
status, polled every 20 ms), the bytes the process read from the disk by then
(/proc/PID/io read_bytes: the page-cache misses, counted when the read is issued), which corpus
files are in the page cache at ready, VmRSS; then `--presses` presses, each timed from the
press to the end of the visit, with the visit's own stage times and the bytes it read.

The service runs with `camera: file` (appliance/data/visitor.jpg), a virtual printer and
virtual controls, from a config written under `--work`. Evicting files needs no privilege
(they are only read); `/proc/sys/vm/drop_caches` would also drop the Python and model files.
First, in this process, the corpus part of start-up as it was (`before`: open, index check,
every row read and checked, scanner) and as it is (`now`: the passes over every row on a
thread, which the first search waits for), each cold: its seconds and the bytes its own thread
read (/proc/self/task/TID/io), then when the rows are checked.

A Pi's SD card reads ~40-90 MB/s: bytes read / that rate estimates its cold start-up's I/O.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from figures import cpu_name, write_json  # noqa: E402 - bench/ is the script's folder

from appliance.runtime.control_socket import ControlError, request  # noqa: E402

SOSIE = Path(sys.executable).with_name("sosie")
POLL = 0.02
SD_CARD_MB_S = (40, 90)


def corpus_files(corpus: Path) -> list[Path]:
    return sorted(p for p in corpus.iterdir() if p.is_file())


def evict(files: list[Path]) -> None:
    """Drop each file's pages from the page cache (pages mapped by a process stay; dirty pages
    are written first, else they would stay too)."""
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def resident(files: list[Path]) -> dict[str, int]:
    """Bytes of each file in the page cache (`fincore`)."""
    out = subprocess.run(["fincore", "--bytes", "--noheadings", "--raw", "--output", "RES,FILE",
                          *map(str, files)], capture_output=True, text=True, check=True).stdout
    sizes = {}
    for line in out.splitlines():
        res, name = line.split(" ", 1)
        sizes[Path(name).name] = int(res)
    return sizes


def read_bytes(io: Path) -> int:
    """The bytes a process or a thread read from the disk, from its /proc `io` file."""
    for line in io.read_text().splitlines():
        if line.startswith("read_bytes:"):
            return int(line.split()[1])
    raise RuntimeError(f"{io} has no read_bytes")


def proc_io(pid: int) -> int:
    return read_bytes(Path(f"/proc/{pid}/io"))


def vm_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def write_config(work: Path, corpus: Path) -> Path:
    config = work / "run.yaml"
    config.write_text(
        f"corpus:\n  path: {corpus}\n"
        f"camera:\n  backend: file\n  source: {ROOT / 'appliance/data/visitor.jpg'}\n"
        f"printer:\n  backend: virtual\n  virtual:\n    out_dir: {work / 'tickets'}\n"
        "controls:\n  backend: virtual\nmachine:\n  cooldown_seconds: 0.0\n")
    return config


def status(sock: Path) -> dict[str, Any] | None:
    try:
        return request(sock, "status", timeout=5.0)
    except (ControlError, OSError):
        return None


def wait_ready(proc: subprocess.Popen[bytes], sock: Path, timeout: float = 120.0) -> float:
    """Seconds from now until the service says ready (raises if it faults or exits)."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"sosie run exited with {proc.returncode}")
        s = status(sock)
        if s is not None and s.get("state") == "ready":
            return time.perf_counter() - start
        if s is not None and s.get("state") == "fault":
            raise RuntimeError(f"sosie run faulted: {s.get('last_fault')}")
        time.sleep(POLL)
    raise RuntimeError(f"not ready within {timeout:.0f} s")


def press(sock: Path, pid: int, visit: int) -> dict[str, Any]:
    """One press, timed to the end of its visit, with the visit's stages and bytes read."""
    before = proc_io(pid)
    start = time.perf_counter()
    reply = request(sock, "press")
    if not reply.get("taken", reply.get("accepted")):
        raise RuntimeError(f"press ignored: {reply}")
    while True:
        s = status(sock) or {}
        if s.get("visits", 0) >= visit and s.get("state") in {"ready", "cooldown", "fault"}:
            break
        time.sleep(POLL)
    last = s.get("last_visit") or {}
    return {"seconds": time.perf_counter() - start, "outcome": last.get("outcome"),
            "stages_ms": last.get("ms", {}), "read_bytes": proc_io(pid) - before}


def start_once(config: Path, work: Path, files: list[Path], cold: bool,
               presses: int) -> dict[str, Any]:
    if cold:
        evict(files)
    before = resident(files)
    sock = work / "control.sock"
    log = (work / "run.log").open("ab")
    began = time.perf_counter()
    proc = subprocess.Popen([str(SOSIE), "run", "--config", str(config), "--socket", str(sock)],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_ready(proc, sock)
        ready = time.perf_counter() - began  # from the launch
        row: dict[str, Any] = {
            "cold": cold, "ready_seconds": ready, "read_bytes_at_ready": proc_io(proc.pid),
            "rss_mb_at_ready": vm_rss_mb(proc.pid),
            "resident_before": sum(before.values()), "resident_at_ready": resident(files),
            "startup_seconds": (status(sock) or {}).get("startup_seconds"),
        }
        row["presses"] = [press(sock, proc.pid, i + 1) for i in range(presses)]
        row["rss_mb_after"] = vm_rss_mb(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    return row


def thread_read_bytes() -> int:
    """Bytes this thread read from the disk."""
    return read_bytes(Path(f"/proc/self/task/{threading.get_native_id()}/io"))


def open_path(corpus_dir: Path, files: list[Path], design: str) -> dict[str, float]:
    """The corpus part of start-up in this process, the corpus cold: `before` opens, checks the
    index, reads every row (`warm`) and makes the scanner, as `sosie run` did; `now` is what
    `Appliance._open_corpus` does (the passes over every row on a thread). The start-up path's
    bytes are this thread's; the thread's are the process's less this one's."""
    from appliance.corpus import Corpus
    from appliance.runtime.appliance import make_scanner, open_corpus
    from appliance.runtime.lookup import Lookup
    from appliance.search import SearchSettings
    from appliance.ticket import TicketLayout

    Corpus.open(corpus_dir).close()  # imports and the models' checksums (memoised) untimed
    evict(files)
    assert not any(resident(files).values()), "corpus still in the page cache"
    own, whole = thread_read_bytes(), proc_io(os.getpid())
    start = time.perf_counter()
    if design == "before":
        corpus = Corpus.open(corpus_dir)
        corpus.warm()
        scanner = corpus.scanner()
    else:
        corpus = open_corpus(corpus_dir, None)
        corpus.check_in_background()
        scanner = make_scanner(corpus, SearchSettings())
    Lookup(None, corpus, scanner, TicketLayout())  # the map's sample: at the first map now
    opened = time.perf_counter() - start
    path_bytes = thread_read_bytes() - own
    corpus.check_rows()  # waits for the thread
    checked = time.perf_counter() - start
    total = proc_io(os.getpid()) - whole
    corpus.close()
    return {"start_up_seconds": opened, "start_up_bytes": path_bytes,
            "checked_seconds": checked, "thread_bytes": total - path_bytes}


def mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--presses", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("/tmp/sosie-startup"),
                        help="config, socket, tickets and log of the service")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    args.work.mkdir(parents=True, exist_ok=True)
    config = write_config(args.work, args.corpus.resolve())
    files = corpus_files(args.corpus)
    total = sum(p.stat().st_size for p in files)
    designs = []
    for _rep in range(args.reps):
        for design in ("before", "now"):
            row = {"design": design, **open_path(args.corpus, files, design)}
            designs.append(row)
            print(f"in process, {design}: corpus start-up {row['start_up_seconds']:.3f} s, "
                  f"read {mb(row['start_up_bytes'])}; checked by "
                  f"{row['checked_seconds']:.3f} s, the thread read {mb(row['thread_bytes'])}",
                  flush=True)
    rows = []
    for rep in range(args.reps):
        for cold in (True, False):
            row = start_once(config, args.work, files, cold, args.presses)
            rows.append(row)
            at_ready = row["resident_at_ready"]
            first = row["presses"][0] if row["presses"] else {}
            print(f"rep {rep} {'cold' if cold else 'warm'}: resident before "
                  f"{mb(row['resident_before'])}; ready {row['ready_seconds']:.2f} s "
                  f"({row['startup_seconds']}); read {mb(row['read_bytes_at_ready'])}; corpus in "
                  f"cache at ready {mb(sum(at_ready.values()))}; RSS {row['rss_mb_at_ready']:.0f}"
                  f" MB; first press {first.get('seconds', float('nan')):.2f} s "
                  f"({first.get('outcome')}, read {mb(first.get('read_bytes', 0))}, "
                  f"{first.get('stages_ms')})", flush=True)
    print()
    print(f"corpus {args.corpus}: {len(files)} files, {mb(total)}; CPU {cpu_name()}")
    for design in ("before", "now"):
        some = [r for r in designs if r["design"] == design]
        print(f"corpus start-up in process, {design}: median "
              f"{statistics.median(r['start_up_seconds'] for r in some):.3f} s, read "
              f"{mb(statistics.median(r['start_up_bytes'] for r in some))} on its path; rows "
              f"checked by {statistics.median(r['checked_seconds'] for r in some):.3f} s")
    for cold in (True, False):
        some = [r for r in rows if r["cold"] == cold]
        ready = statistics.median(r["ready_seconds"] for r in some)
        read = statistics.median(r["read_bytes_at_ready"] for r in some)
        print(f"{'cold' if cold else 'warm'}: launch -> ready median {ready:.2f} s; read "
              f"{mb(read)}; SD card estimate of that I/O: "
              + " - ".join(f"{read / 1e6 / rate:.1f} s" for rate in reversed(SD_CARD_MB_S)))
        for i in range(args.presses):
            secs = statistics.median(r["presses"][i]["seconds"] for r in some)
            got = statistics.median(r["presses"][i]["read_bytes"] for r in some)
            print(f"  press {i + 1}: {secs * 1000:.0f} ms to the visit's end (median), read "
                  f"{mb(got)}")
        files_read = some[0]["resident_at_ready"]
        print("  corpus bytes in cache at ready: "
              + ", ".join(f"{k} {mb(v)}" for k, v in files_read.items() if v))
    if args.json:
        write_json(args.json, {"corpus": str(args.corpus), "bytes": total, "cpu": cpu_name(),
                               "in_process": designs, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
