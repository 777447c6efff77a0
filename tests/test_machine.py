"""Every transition of the appliance state machine, plus invariants under random event streams."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.faults import Fault
from appliance.runtime.machine import (
    COOLDOWN_TIMER,
    RETRY_TIMER,
    STAGE_TIMER,
    Blink,
    CancelTimer,
    Capture,
    Captured,
    CaptureFailed,
    Conjuring,
    CorpusCheckFailed,
    EndVisit,
    Found,
    Machine,
    MachineSettings,
    NoFace,
    Press,
    Printed,
    PrintFailed,
    PrintNoFace,
    PrintTicket,
    Probe,
    ProbeFailed,
    ProbeOk,
    Search,
    SearchFailed,
    Show,
    Shutdown,
    Started,
    StartFailed,
    StartTimer,
    Stop,
    TimerExpired,
)
from appliance.runtime.states import State


def timer(actions, name):
    """The StartTimer action for `name` among `actions`."""
    found = [a for a in actions if isinstance(a, StartTimer) and a.name == name]
    assert found, f"no {name} timer in {actions}"
    return found[-1]


def expire(m: Machine, actions, name):
    t = timer(actions, name)
    return m.handle(TimerExpired(name, t.token))


def kinds(actions):
    return [type(a) for a in actions]


@pytest.fixture
def m():
    return Machine(MachineSettings(cooldown_seconds=3, retry_seconds=2, retry_max_seconds=10))


def to_ready(m):
    assert m.handle(Started()) == [Show(State.READY)]
    return m


def to_capturing(m):
    to_ready(m)
    return m.handle(Press())


def to_searching(m):
    acts = to_capturing(m)
    return acts, m.handle(Captured(m.visit, "frame"))


def to_printing(m):
    _, acts = to_searching(m)
    return acts, m.handle(Found(m.visit, "ticket"))


def to_conjuring(m):
    to_printing(m)
    return m.handle(Conjuring(m.visit))


def to_cooldown(m):
    to_printing(m)
    return m.handle(Printed(m.visit))


def test_starts_in_starting(m):
    assert m.state is State.STARTING
    assert m.visit == 0


def test_starting_started_to_ready(m):
    to_ready(m)
    assert m.state is State.READY


@pytest.mark.parametrize("fault", list(Fault))
def test_starting_failure_to_fault_with_retry(m, fault):
    acts = m.handle(StartFailed(fault, "not there"))
    assert m.state is State.FAULT and m.fault is fault
    assert Show(State.FAULT, fault) in acts
    assert timer(acts, RETRY_TIMER).seconds == 2
    assert m.last_fault == (fault, "not there")
    assert m.counters.faults == 1


def test_press_while_starting_is_ignored_and_counted(m):
    assert m.handle(Press()) == []
    assert m.counters.presses == 1 and m.counters.presses_ignored == 1
    assert m.state is State.STARTING


def test_ready_press_to_capturing(m):
    acts = to_capturing(m)
    assert m.state is State.CAPTURING
    assert acts[0] == Show(State.CAPTURING)
    assert Capture(1) in acts
    assert timer(acts, STAGE_TIMER).seconds == m.settings.capture_timeout
    assert m.counters.visits == 1


def test_capturing_captured_to_searching(m):
    _, acts = to_searching(m)
    assert m.state is State.SEARCHING
    assert CancelTimer(STAGE_TIMER) in acts
    assert Search(1, "frame") in acts
    assert timer(acts, STAGE_TIMER).seconds == m.settings.search_timeout


def test_capturing_failure_to_camera_fault(m):
    to_capturing(m)
    acts = m.handle(CaptureFailed(1, "camera unplugged"))
    assert m.state is State.FAULT and m.fault is Fault.CAMERA
    assert EndVisit(1, "fault: camera") in acts
    assert CancelTimer(STAGE_TIMER) in acts
    assert timer(acts, RETRY_TIMER)


def test_capturing_timeout_to_camera_fault(m):
    acts = to_capturing(m)
    acts = expire(m, acts, STAGE_TIMER)
    assert m.state is State.FAULT and m.fault is Fault.CAMERA
    assert m.last_fault == (Fault.CAMERA, "capture timed out")
    assert EndVisit(1, "fault: camera") in acts


def test_searching_found_to_printing(m):
    _, acts = to_printing(m)
    assert m.state is State.PRINTING
    assert PrintTicket(1, "ticket") in acts
    assert timer(acts, STAGE_TIMER).seconds == m.settings.print_timeout


def test_conjuring_the_double_shows_its_own_state_and_stays_busy(m):
    """`ticket.conjure: after`: once the ticket is out the LED says "conjuring" (not
    "printing"), presses are still refused as busy, and the print stage's timer still runs."""
    _, acts = to_printing(m)
    stage = timer(acts, STAGE_TIMER)
    assert m.handle(Conjuring(m.visit - 1)) == [] and m.state is State.PRINTING  # stale visit
    assert m.handle(Conjuring(m.visit)) == [Show(State.CONJURING)]
    assert m.state is State.CONJURING
    assert m.handle(Press()) == [] and m.counters.presses_ignored == 1
    assert m.handle(Found(m.visit, "t")) == [] and m.handle(Conjuring(m.visit)) == []
    acts = m.handle(Printed(m.visit))
    assert m.state is State.COOLDOWN and EndVisit(1, "printed") in acts
    assert m.counters.tickets_printed == 1
    assert m.handle(TimerExpired(STAGE_TIMER, stage.token)) == []  # cancelled with the visit


def test_conjuring_that_hangs_or_fails_is_a_printer_fault(m):
    _, acts = to_printing(m)
    m.handle(Conjuring(1))
    acts = expire(m, acts, STAGE_TIMER)
    assert m.state is State.FAULT and m.fault is Fault.PRINTER
    assert m.last_fault == (Fault.PRINTER, "print of the conjured double timed out")
    assert EndVisit(1, "fault: printer") in acts
    m2 = Machine()
    to_printing(m2)
    m2.handle(Conjuring(1))
    m2.handle(PrintFailed(1, "paper out"))
    assert m2.state is State.FAULT and m2.last_fault == (Fault.PRINTER, "paper out")


def test_searching_no_face_prints_short_ticket_by_default(m):
    to_searching(m)
    acts = m.handle(NoFace(1, "no face found"))
    assert m.state is State.PRINTING
    assert PrintNoFace(1, "no face found") in acts
    assert m.counters.no_face == 1
    m.handle(Printed(1))
    assert m.state is State.COOLDOWN
    assert m.counters.tickets_printed == 1


def test_searching_no_face_blink_mode_goes_to_cooldown_without_printing():
    m = Machine(MachineSettings(no_face="blink", no_face_blink_seconds=1.5))
    to_searching(m)
    acts = m.handle(NoFace(1))
    assert m.state is State.COOLDOWN
    assert Blink("no_face", 1.5) in acts
    assert EndVisit(1, "no face") in acts
    assert not any(isinstance(a, PrintNoFace | PrintTicket) for a in acts)
    assert m.counters.tickets_printed == 0


def test_searching_failure_to_corpus_fault(m):
    to_searching(m)
    m.handle(SearchFailed(1, "corpus file vanished"))
    assert m.state is State.FAULT and m.fault is Fault.CORPUS


@pytest.mark.parametrize("part", [Fault.MODELS, Fault.TICKET, Fault.CAMERA])
def test_search_and_capture_failures_name_their_part(part):
    for failed, reach in ((SearchFailed, to_searching), (CaptureFailed, to_capturing)):
        m = Machine(MachineSettings(retry_seconds=2))
        reach(m)
        acts = m.handle(failed(1, "broken", part))
        assert m.state is State.FAULT and m.fault is part
        assert Show(State.FAULT, part) in acts and m.last_fault == (part, "broken")
        assert m.handle(TimerExpired(RETRY_TIMER, acts[-1].token)) == [Probe(part)]


def test_searching_timeout_to_corpus_fault(m):
    _, acts = to_searching(m)
    expire(m, acts, STAGE_TIMER)
    assert m.state is State.FAULT and m.fault is Fault.CORPUS


def test_printing_printed_to_cooldown(m):
    acts = to_cooldown(m)
    assert m.state is State.COOLDOWN
    assert EndVisit(1, "printed") in acts
    assert timer(acts, COOLDOWN_TIMER).seconds == 3
    assert m.counters.tickets_printed == 1


def test_printing_failure_to_printer_fault(m):
    to_printing(m)
    acts = m.handle(PrintFailed(1, "out of paper"))
    assert m.state is State.FAULT and m.fault is Fault.PRINTER
    assert EndVisit(1, "fault: printer") in acts
    assert m.counters.tickets_printed == 0


def test_printing_timeout_to_printer_fault(m):
    _, acts = to_printing(m)
    expire(m, acts, STAGE_TIMER)
    assert m.state is State.FAULT and m.fault is Fault.PRINTER


def test_cooldown_timer_to_ready(m):
    acts = to_cooldown(m)
    assert expire(m, acts, COOLDOWN_TIMER) == [Show(State.READY)]
    assert m.state is State.READY


@pytest.mark.parametrize("busy", ["capturing", "searching", "printing", "cooldown"])
def test_presses_while_busy_are_ignored_and_counted(m, busy):
    {"capturing": to_capturing, "searching": to_searching, "printing": to_printing,
     "cooldown": to_cooldown}[busy](m)
    state = m.state
    for _ in range(3):
        assert m.handle(Press("button")) == []
    assert m.state is state
    assert m.counters.presses == 4 and m.counters.presses_ignored == 3
    assert m.counters.visits == 1


def test_fault_retry_timer_probes(m):
    acts = m.handle(StartFailed(Fault.PRINTER, "no printer"))
    assert expire(m, acts, RETRY_TIMER) == [Probe(Fault.PRINTER)]
    assert m.state is State.FAULT


def test_fault_probe_ok_returns_to_ready(m):
    m.handle(StartFailed(Fault.CAMERA, "no camera"))
    assert m.handle(ProbeOk(Fault.CAMERA)) == [Show(State.READY)]
    assert m.state is State.READY and m.fault is None
    assert m.last_fault == (Fault.CAMERA, "no camera")  # kept for `sosie status`


def test_fault_probe_failed_backs_off_up_to_the_maximum(m):
    m.handle(StartFailed(Fault.CAMERA, "no camera"))
    delays = []
    for _ in range(6):
        acts = m.handle(ProbeFailed(Fault.CAMERA, "still no camera"))
        delays.append(timer(acts, RETRY_TIMER).seconds)
    assert delays == [4, 8, 10, 10, 10, 10]
    assert m.state is State.FAULT


def test_fault_probe_failed_for_another_part_switches_fault(m):
    m.handle(StartFailed(Fault.CAMERA, "no camera"))
    acts = m.handle(ProbeFailed(Fault.PRINTER, "no printer"))
    assert m.fault is Fault.PRINTER
    assert Show(State.FAULT, Fault.PRINTER) in acts
    assert timer(acts, RETRY_TIMER)


def test_fault_probe_ok_for_other_part_is_ignored(m):
    m.handle(StartFailed(Fault.CAMERA, "no camera"))
    assert m.handle(ProbeOk(Fault.PRINTER)) == []
    assert m.state is State.FAULT


def test_press_in_fault_is_ignored(m):
    m.handle(StartFailed(Fault.CAMERA, "no camera"))
    assert m.handle(Press()) == []
    assert m.counters.presses_ignored == 1


def test_backoff_resets_after_recovery(m):
    m.handle(StartFailed(Fault.CAMERA, "x"))
    m.handle(ProbeFailed(Fault.CAMERA, "x"))
    m.handle(ProbeFailed(Fault.CAMERA, "x"))
    m.handle(ProbeOk(Fault.CAMERA))
    m.handle(Press())
    acts = m.handle(CaptureFailed(m.visit, "lost"))
    assert timer(acts, RETRY_TIMER).seconds == 2


def test_full_visit_after_fault_recovery(m):
    to_capturing(m)
    m.handle(CaptureFailed(1, "lost"))
    m.handle(ProbeOk(Fault.CAMERA))
    acts = m.handle(Press())
    assert Capture(2) in acts
    m.handle(Captured(2, "f"))
    m.handle(Found(2, "t"))
    m.handle(Printed(2))
    assert m.counters.tickets_printed == 1 and m.counters.faults == 1


def test_stale_events_from_an_earlier_visit_are_ignored(m):
    to_capturing(m)
    m.handle(CaptureFailed(1, "timeout"))
    m.handle(ProbeOk(Fault.CAMERA))
    m.handle(Press())  # visit 2
    assert m.handle(Captured(1, "late frame")) == []
    assert m.state is State.CAPTURING
    m.handle(Captured(2, "frame"))
    assert m.handle(Found(1, "old")) == []
    assert m.handle(NoFace(1)) == []
    assert m.handle(SearchFailed(1, "x")) == []
    m.handle(Found(2, "t"))
    assert m.handle(Printed(1)) == []
    assert m.handle(PrintFailed(1, "x")) == []
    assert m.state is State.PRINTING
    assert m.handle(CaptureFailed(1, "x")) == []


def test_stale_timer_is_ignored(m):
    acts = to_capturing(m)
    stage = timer(acts, STAGE_TIMER)
    m.handle(Captured(1, "f"))  # the capture timer is replaced by the search timer
    assert m.handle(TimerExpired(STAGE_TIMER, stage.token)) == []
    assert m.state is State.SEARCHING


def test_late_stage_timer_after_finish_is_ignored(m):
    acts = to_cooldown(m)
    assert m.handle(TimerExpired(STAGE_TIMER, 1)) == []
    expire(m, acts, COOLDOWN_TIMER)
    assert m.state is State.READY


def test_events_that_do_not_apply_are_ignored(m):
    to_ready(m)
    for event in (Captured(0, "f"), Found(0, "t"), Printed(0), ProbeOk(Fault.CAMERA),
                  Started(), StartFailed(Fault.CAMERA, "x")):
        assert m.handle(event) == []
        assert m.state is State.READY


@pytest.mark.parametrize("where", ["starting", "ready", "capturing", "searching", "printing",
                                   "conjuring", "cooldown", "fault"])
def test_shutdown_from_every_state(m, where):
    if where == "fault":
        m.handle(StartFailed(Fault.PRINTER, "x"))
    elif where != "starting":
        {"ready": to_ready, "capturing": to_capturing, "searching": to_searching,
         "printing": to_printing, "conjuring": to_conjuring, "cooldown": to_cooldown}[where](m)
    busy = m.state in {State.CAPTURING, State.SEARCHING, State.PRINTING, State.CONJURING}
    acts = m.handle(Shutdown())
    assert m.state is State.SHUTTING_DOWN
    assert acts[-1] == Stop(poweroff=False)
    assert Show(State.SHUTTING_DOWN) in acts
    assert any(isinstance(a, EndVisit) for a in acts) == busy
    assert not m.timers  # every pending timer cancelled


def test_shutting_down_is_terminal(m):
    to_ready(m)
    assert m.handle(Shutdown(poweroff=True))[-1] == Stop(poweroff=True)
    for event in (Press(), Started(), Shutdown(), TimerExpired(COOLDOWN_TIMER, 1)):
        assert m.handle(event) == []
    assert m.state is State.SHUTTING_DOWN
    assert m.counters.presses == 0


# ---------------------------------------------------------------------------------------------
# The corpus's background check finding a problem: a corpus fault at once, no press needed.

BAD_ROWS = "corpus check: /c/descriptors.f16: 1 row(s) hold NaN or infinity"


def test_ready_corpus_check_failed_to_corpus_fault_and_its_recovery(m):
    to_ready(m)
    acts = m.handle(CorpusCheckFailed(BAD_ROWS))
    assert m.state is State.FAULT and m.fault is Fault.CORPUS
    assert Show(State.FAULT, Fault.CORPUS) in acts  # the LED's corpus fault pattern
    assert not any(isinstance(a, EndVisit) for a in acts)  # no visit to end
    assert m.last_fault == (Fault.CORPUS, BAD_ROWS) and m.counters.faults == 1
    assert m.counters.presses == 0 and m.counters.visits == 0
    assert m.handle(Press()) == [] and m.state is State.FAULT  # refused while at fault
    assert expire(m, acts, RETRY_TIMER) == [Probe(Fault.CORPUS)]  # the corpus fault's path
    assert m.handle(ProbeOk(Fault.CORPUS)) == [Show(State.READY)]


@pytest.mark.parametrize("busy", ["capturing", "searching", "printing", "conjuring"])
def test_a_busy_visit_ends_as_a_corpus_fault_without_a_ticket(m, busy):
    {"capturing": to_capturing, "searching": to_searching, "printing": to_printing,
     "conjuring": to_conjuring}[busy](m)
    visit = m.visit
    acts = m.handle(CorpusCheckFailed(BAD_ROWS))
    assert m.state is State.FAULT and m.fault is Fault.CORPUS
    assert EndVisit(visit, "fault: corpus") in acts and CancelTimer(STAGE_TIMER) in acts
    assert STAGE_TIMER not in m.timers and RETRY_TIMER in m.timers
    # the visit's late answers change nothing: no search, no ticket, no second fault
    for late in (Captured(visit, "frame"), Found(visit, "garbage ticket"), NoFace(visit),
                 SearchFailed(visit, "search: rows hold NaN"), Printed(visit)):
        assert m.handle(late) == []
    assert m.state is State.FAULT and m.counters.faults == 1
    assert m.counters.tickets_printed == 0 and m.last_fault == (Fault.CORPUS, BAD_ROWS)


def test_corpus_check_failed_while_starting_or_cooling_down(m):
    acts = m.handle(CorpusCheckFailed(BAD_ROWS))  # the check can end before start-up does
    assert m.state is State.FAULT and Show(State.FAULT, Fault.CORPUS) in acts
    assert m.handle(Started()) == [] and m.state is State.FAULT  # not ready over a bad corpus
    other = Machine(m.settings)
    to_cooldown(other)
    acts = other.handle(CorpusCheckFailed(BAD_ROWS))
    assert CancelTimer(COOLDOWN_TIMER) in acts and other.fault is Fault.CORPUS
    assert not any(isinstance(a, EndVisit) for a in acts)  # the visit had ended (printed)


def test_corpus_check_failed_during_a_fault(m):
    acts = m.handle(StartFailed(Fault.CORPUS, "search: rows hold NaN"))
    assert m.handle(CorpusCheckFailed(BAD_ROWS)) == []  # already shown, the retry kept
    assert m.last_fault == (Fault.CORPUS, BAD_ROWS) and m.counters.faults == 1
    assert expire(m, acts, RETRY_TIMER) == [Probe(Fault.CORPUS)]
    camera = Machine(m.settings)
    camera.handle(StartFailed(Fault.CAMERA, "no camera"))
    acts = camera.handle(CorpusCheckFailed(BAD_ROWS))  # not lost behind the camera's fault
    assert camera.fault is Fault.CORPUS and Show(State.FAULT, Fault.CORPUS) in acts
    assert expire(camera, acts, RETRY_TIMER) == [Probe(Fault.CORPUS)]


def test_corpus_check_failed_after_shutdown_is_ignored(m):
    to_ready(m)
    m.handle(Shutdown())
    assert m.handle(CorpusCheckFailed(BAD_ROWS)) == [] and m.state is State.SHUTTING_DOWN


# ---------------------------------------------------------------------------------------------
# Random event streams: the machine never crashes and its bookkeeping stays consistent.

events = st.one_of(
    st.just(Started()),
    st.builds(StartFailed, st.sampled_from(Fault), st.just("x")),
    st.just(Press()),
    st.builds(lambda d: ("captured", d), st.integers(-1, 0)),
    st.builds(lambda d: ("capture_failed", d), st.integers(-1, 0)),
    st.builds(lambda d: ("found", d), st.integers(-1, 0)),
    st.builds(lambda d: ("no_face", d), st.integers(-1, 0)),
    st.builds(lambda d: ("printed", d), st.integers(-1, 0)),
    st.builds(lambda d: ("conjuring", d), st.integers(-1, 0)),
    st.builds(lambda d: ("print_failed", d), st.integers(-1, 0)),
    st.builds(lambda d: ("search_failed", d), st.integers(-1, 0)),
    st.sampled_from([("timer", STAGE_TIMER), ("timer", COOLDOWN_TIMER), ("timer", RETRY_TIMER)]),
    st.builds(ProbeOk, st.sampled_from(Fault)),
    st.builds(ProbeFailed, st.sampled_from(Fault), st.just("x")),
    st.just(CorpusCheckFailed("x")),
)


def concrete(m: Machine, e):
    if not isinstance(e, tuple):
        return e
    kind, arg = e
    if kind == "timer":
        return TimerExpired(arg, m.timers.get(arg, -1))
    visit = m.visit + arg  # 0 = current visit, -1 = a stale one
    return {
        "captured": lambda: Captured(visit, "f"),
        "capture_failed": lambda: CaptureFailed(visit, "x"),
        "found": lambda: Found(visit, "t"),
        "no_face": lambda: NoFace(visit),
        "printed": lambda: Printed(visit),
        "conjuring": lambda: Conjuring(visit),
        "print_failed": lambda: PrintFailed(visit, "x"),
        "search_failed": lambda: SearchFailed(visit, "x"),
    }[kind]()


@settings(max_examples=300, deadline=None)
@given(st.lists(events, max_size=60), st.sampled_from(["ticket", "blink"]))
def test_random_streams_keep_invariants(stream, no_face):
    m = Machine(MachineSettings(no_face=no_face))
    printed_before = 0
    probing = False
    for e in stream:
        before = m.state
        acts = m.handle(concrete(m, e))
        c = m.counters
        assert c.presses == c.visits + c.presses_ignored
        assert c.tickets_printed >= printed_before
        printed_before = c.tickets_printed
        assert (m.state is State.FAULT) == (m.fault is not None)
        # a busy state always has a stage timer running, so a hung device cannot block it
        if m.state in {State.CAPTURING, State.SEARCHING, State.PRINTING, State.CONJURING}:
            assert STAGE_TIMER in m.timers
        if m.state is State.COOLDOWN:
            assert COOLDOWN_TIMER in m.timers
        if any(isinstance(a, Probe) for a in acts):
            probing = True
        if any(isinstance(a, StartTimer) and a.name == RETRY_TIMER for a in acts):
            probing = False
        if m.state is State.FAULT:  # either waiting to retry or waiting for a probe's answer
            assert (RETRY_TIMER in m.timers) != probing
        shows = [a for a in acts if isinstance(a, Show)]
        if m.state is not before:
            assert shows and shows[-1].state is m.state
        else:
            assert all(s.state is m.state for s in shows)
        # a visit is ended at most once
        assert len([a for a in acts if isinstance(a, EndVisit)]) <= 1
