"""appliance.compute.pool: how build workers are started."""

from __future__ import annotations

import os

import pytest

from appliance.compute.pool import run_tasks, single_threaded

BLAS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "OPENCV_FOR_THREADS_NUM")


def no_setup() -> None:
    pass


def blas_threads(task: tuple[str]) -> tuple[str, str | None]:
    return task[0], os.environ.get(task[0])


def crashed(task, code):
    raise AssertionError(f"worker crashed on {task}: {code}")


def environment_of_workers(workers: int) -> dict[str, str | None]:
    tasks = [(name,) for name in BLAS]
    return dict(run_tasks(tasks, workers, no_setup, (), blas_threads, crashed))


@pytest.fixture
def clean_blas_env(monkeypatch):
    for name in BLAS:
        monkeypatch.delenv(name, raising=False)


def test_several_workers_get_one_library_thread_each(clean_blas_env):
    assert environment_of_workers(2) == {name: "1" for name in BLAS}
    assert not any(name in os.environ for name in BLAS)  # the parent is left as it was


def test_a_single_worker_keeps_every_blas_thread(clean_blas_env):
    assert environment_of_workers(1) == {name: None for name in BLAS}


def test_an_installers_setting_wins(clean_blas_env, monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    found = environment_of_workers(2)
    assert found == {"OPENBLAS_NUM_THREADS": "3", "OMP_NUM_THREADS": "1",
                     "OPENCV_FOR_THREADS_NUM": "1"}
    assert os.environ["OPENBLAS_NUM_THREADS"] == "3"


def test_work_in_this_process_runs_single_threaded_then_restores():
    import cv2
    from threadpoolctl import threadpool_info

    def blas_threads() -> set[int]:
        return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}

    cv2.setNumThreads(2)
    before = blas_threads()
    with single_threaded():
        assert cv2.getNumThreads() == 1
        assert blas_threads() == {1}
    assert cv2.getNumThreads() == 2
    assert blas_threads() == before


def test_a_build_process_starts_its_libraries_on_one_thread(clean_blas_env, monkeypatch):
    import subprocess
    import sys

    probe = ("from appliance.compute.pool import single_threaded_process\n"
             "single_threaded_process()\n"
             "import cv2, numpy\n"
             "from threadpoolctl import threadpool_info\n"
             "print(sorted({p['num_threads'] for p in threadpool_info()"
             " if p['user_api'] == 'blas'}), cv2.getNumThreads())\n")

    def threads() -> str:
        return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                              check=True, timeout=120).stdout.strip()

    assert threads() == "[1] 1"
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")  # an installer's setting wins
    assert threads() == "[2] 1"
