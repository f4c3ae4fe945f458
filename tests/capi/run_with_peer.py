#!/usr/bin/env python3
"""Runs an example client against the C++ echo peer, as two processes in a job of their own.

    run_with_peer.py [--peer CPP_PEER --expect N] [--probe-library LIB] -- CLIENT [ARGS...]

Starts CPP_PEER --expect N, runs the client, then waits for the peer. Passes (exit 0) when both
exit 0. Without --peer the client runs alone (the two-node examples start their own nodes; the
job's nodes are "<job>-n<k>"). Every step has a deadline, and the job's segments (its nodes'
too) are removed at the end whatever happened. With --probe-library, first checks that this
Python can load LIB at all and exits 77 (ctest: skipped) if it cannot (see
tests/capi/CMakeLists.txt for when that is expected).
"""
import argparse
import glob
import os
import subprocess
import sys

SKIP = 77


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--peer")
    parser.add_argument("--expect", type=int)
    parser.add_argument("--probe-library")
    parser.add_argument("client", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    client = args.client[1:] if args.client[:1] == ["--"] else args.client
    if not client:
        parser.error("no client command after --")
    if (args.peer is None) != (args.expect is None):
        parser.error("--peer and --expect go together")

    if args.probe_library:
        probe = subprocess.run([sys.executable, "-c", "import ctypes, sys; ctypes.CDLL(sys.argv[1])",
                                args.probe_library], capture_output=True, text=True, timeout=60)
        if probe.returncode != 0:
            print(f"SKIP: {sys.executable} cannot load {args.probe_library} (exit {probe.returncode}):\n"
                  f"{probe.stderr.strip()[-2000:]}")
            return SKIP

    job = f"capi{os.getpid()}"
    env = dict(os.environ, CHANPOOL_JOB=job)
    peer = None
    if args.peer:
        peer = subprocess.Popen([args.peer, "--expect", str(args.expect), "--idle-timeout", "60"], env=env)
    try:
        try:
            client_rc = subprocess.run(client, env=env, timeout=240).returncode
        except subprocess.TimeoutExpired:
            print("FAIL: the client did not finish in 240 s")
            return 1
        if client_rc != 0:
            print(f"FAIL: the client exited {client_rc}")
            return 1
        if peer is None:
            print("PASS: the client exited 0")
            return 0
        try:
            peer_rc = peer.wait(timeout=60)
        except subprocess.TimeoutExpired:
            print("FAIL: the peer did not exit within 60 s of the client")
            return 1
        if peer_rc != 0:
            print(f"FAIL: the peer exited {peer_rc}")
            return 1
        print("PASS: client and peer both exited 0")
        return 0
    finally:
        if peer is not None and peer.poll() is None:
            peer.kill()
            peer.wait()
        for pattern in (f"{job}.*", f"{job}-n*.*"):
            for path in glob.glob(f"/dev/shm/chanpool.{os.getuid()}.{pattern}"):
                os.unlink(path)


if __name__ == "__main__":
    sys.exit(main())
