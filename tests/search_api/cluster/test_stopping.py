"""SIGTERM while a server on Ray starts (search_api/cluster/stopping.py), in real processes: the
start-up unwinds through its clean-up, and a clean-up that never returns still ends the process
when its grace is over; so does the clean-up after serving."""

from __future__ import annotations

import signal
import subprocess
import sys

from tests.deployment import ENV, ROOT

STARTING = """
import sys, time
from search_api.cluster.stopping import Stopped, starting
try:
    with starting(grace=float(sys.argv[1])):
        try:
            print("starting", flush=True)
            time.sleep(60)  # joining a cluster, deploying...
        finally:
            print("cleaning up", flush=True)
            time.sleep(float(sys.argv[2]))  # deleting what was deployed
except Stopped as stop:
    print(f"stopped by {stop.signal}", flush=True)
    sys.exit(1)
"""


def start(grace: float, cleanup: float) -> subprocess.Popen[str]:
    process = subprocess.Popen([sys.executable, "-c", STARTING, str(grace), str(cleanup)],
                               cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline() == "starting\n"
    return process


def test_a_signal_during_start_up_unwinds_through_the_clean_up() -> None:
    process = start(grace=30, cleanup=0.2)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 1, err
    assert out == "cleaning up\nstopped by SIGTERM\n" and err == ""


def test_a_clean_up_that_does_not_return_still_ends_within_the_grace() -> None:
    process = start(grace=1, cleanup=600)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)  # not the 600 s of the clean-up
    assert process.returncode == 1
    assert out == "cleaning up\n"
    assert err == ("error: still stopping 1 s after the signal; exiting now (Serve applications "
                   "it deployed may remain: `serve status`, docs/CLUSTER.md)\n")


ENDING = """
import time
from search_api.cluster.stopping import ending_within
with ending_within(1):
    time.sleep(600)  # Ray waiting for a cluster that went away
"""


def test_the_clean_up_after_serving_ends_within_its_bound() -> None:
    ran = subprocess.run([sys.executable, "-c", ENDING], cwd=ROOT, env=ENV, capture_output=True,
                         text=True, timeout=60)
    assert ran.returncode == 1 and ran.stderr == (
        "error: stopping took more than 1 s; exiting now (Serve applications it deployed may "
        "remain: `serve status`, docs/CLUSTER.md)\n")
