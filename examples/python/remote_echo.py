#!/usr/bin/env python3
"""Two nodes through the chanpool C API's transport (chanpool/transport.h) from Python, with
ctypes only: an echo between a process on node 0 and one on node 1.

    python3 remote_echo.py --lib path/to/libchanpool_c.so [--count N]

Starts two virtual nodes on this host (one agent process each; $CHANPOOL_JOB names the job),
forks the node-1 process, which creates channel "requests" in node 1's namespace, attaches to
node 1's agent and sends every request back to "replies" on node 0 until an empty one arrives.
This process, on node 0, creates "replies", attaches to node 0's agent, opens "requests" on
node 1 and sends N messages (even ones buffered, odd ones deposited), checking
each reply; then the error codes of a wrong name and a wrong node. The library is found as in
echo_client.py (--lib, $CHANPOOL_C_LIBRARY, libchanpool_c.so). Exit status 0 on success.
"""
import argparse
import ctypes
import os
import sys
import time

import echo_client  # message(), ChanpoolError and the channel signatures
from echo_client import OK, E_NOT_FOUND, WAIT_NS, ChanpoolError, message

E_PEER_UNREACHABLE = -11
SEND_BUFFERED, SEND_DEPOSITED = 0, 1


class ClusterConfig(ctypes.Structure):
    _fields_ = [("nodes", ctypes.c_uint32), ("job", ctypes.c_char_p), ("provider", ctypes.c_char_p),
                ("start_timeout_ns", ctypes.c_int64)]


def load(path):
    """The channel functions of echo_client.load() and the transport's."""
    lib = echo_client.load(path)
    p = ctypes.c_void_p
    size_p = ctypes.POINTER(ctypes.c_size_t)
    signatures = {
        "chanpool_cluster_config_init": (None, [ctypes.POINTER(ClusterConfig)]),
        "chanpool_cluster_start": (ctypes.c_int, [ctypes.POINTER(ClusterConfig), ctypes.POINTER(p)]),
        "chanpool_cluster_stop": (None, [p]),
        "chanpool_cluster_node_job": (ctypes.c_int, [p, ctypes.c_uint32, ctypes.c_char_p, ctypes.c_size_t, size_p]),
        "chanpool_client_attach": (ctypes.c_int, [ctypes.c_char_p, ctypes.c_int64, ctypes.POINTER(p)]),
        "chanpool_client_detach": (None, [p]),
        "chanpool_client_node_count": (ctypes.c_uint32, [p]),
        "chanpool_remote_open": (ctypes.c_int, [p, ctypes.c_uint32, ctypes.c_char_p, p, ctypes.POINTER(p)]),
        "chanpool_remote_close": (None, [p]),
        "chanpool_remote_send": (ctypes.c_int, [p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int64, ctypes.c_int]),
        "chanpool_channel_create": (ctypes.c_int, [ctypes.c_char_p, ctypes.c_char_p, p, ctypes.POINTER(p)]),
        "chanpool_channel_unlink": (ctypes.c_int, [ctypes.c_char_p, ctypes.c_char_p]),
    }
    for name, (restype, argtypes) in signatures.items():
        f = getattr(lib, name)
        f.restype, f.argtypes = restype, argtypes
    return lib


def check(lib, what, rc):
    if rc != OK:
        raise ChanpoolError(lib, what, rc)


class Node:
    """This process attached to one node's agent, with a local channel it created there."""

    def __init__(self, lib, node_job, channel):
        self.lib, self.node_job, self.name = lib, node_job, channel.encode()
        self.channel, self.client = ctypes.c_void_p(), ctypes.c_void_p()
        check(lib, f"create {channel}", lib.chanpool_channel_create(self.name, node_job, None, ctypes.byref(self.channel)))
        check(lib, "attach", lib.chanpool_client_attach(node_job, WAIT_NS, ctypes.byref(self.client)))
        self.buffer = ctypes.create_string_buffer(lib.chanpool_channel_max_message_bytes(self.channel))

    def open(self, node, name, wait_s=10.0):
        """A remote channel on `node`, retrying while its creator has not made it yet."""
        remote, deadline = ctypes.c_void_p(), time.monotonic() + wait_s
        while True:
            rc = self.lib.chanpool_remote_open(self.client, node, name.encode(), None, ctypes.byref(remote))
            if rc != E_NOT_FOUND or time.monotonic() > deadline:
                check(self.lib, f"open {name} on node {node}", rc)
                return remote
            time.sleep(0.01)

    def send(self, remote, data, mode=SEND_BUFFERED):
        check(self.lib, "send", self.lib.chanpool_remote_send(remote, data, len(data), WAIT_NS, mode))

    def recv(self):
        length = ctypes.c_size_t(0)
        check(self.lib, "recv", self.lib.chanpool_channel_recv(self.channel, self.buffer, len(self.buffer),
                                                               ctypes.byref(length), WAIT_NS))
        return self.buffer.raw[:length.value]

    def close(self, *remotes):
        for r in remotes:
            self.lib.chanpool_remote_close(r)
        self.lib.chanpool_client_detach(self.client)
        self.lib.chanpool_channel_close(self.channel)
        self.lib.chanpool_channel_unlink(self.name, self.node_job)


def echo(lib, node_job):
    """Node 1: sends every request back to node 0 until an empty one."""
    node = Node(lib, node_job, "requests")
    replies = node.open(0, "replies")
    try:
        while (request := node.recv()) != b"":
            node.send(replies, request)
    finally:
        node.close(replies)


def ping(lib, node_job, count):
    """Node 0: `count` round trips, then the error codes, then the empty message that ends it."""
    node = Node(lib, node_job, "replies")
    requests = node.open(1, "requests")
    sizes = [8, 96, 97, 1000, 4096, 20000, 65536]
    try:
        for seq in range(count):
            sent = message(seq, sizes[seq % len(sizes)])
            node.send(requests, sent, SEND_DEPOSITED if seq % 2 else SEND_BUFFERED)
            if node.recv() != sent:
                raise SystemExit(f"remote_echo.py: reply {seq} differs from its request")
        none = ctypes.c_void_p()
        for where, name, want in ((1, b"no-such-channel", E_NOT_FOUND), (7, b"requests", E_PEER_UNREACHABLE)):
            rc = lib.chanpool_remote_open(node.client, where, name, None, ctypes.byref(none))
            if rc != want:
                raise SystemExit(f"remote_echo.py: open {name!r} on node {where}: {rc}, want {want}")
    finally:
        node.send(requests, b"", SEND_DEPOSITED)
        node.close(requests)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lib", default=os.environ.get("CHANPOOL_C_LIBRARY", "libchanpool_c.so"))
    parser.add_argument("--count", type=int, default=100)
    args = parser.parse_args()
    lib = load(args.lib)

    config = ClusterConfig()
    lib.chanpool_cluster_config_init(ctypes.byref(config))
    config.nodes = 2
    config.job = os.environ.get("CHANPOOL_JOB", "").encode() or None
    cluster = ctypes.c_void_p()
    check(lib, "start the virtual nodes", lib.chanpool_cluster_start(ctypes.byref(config), ctypes.byref(cluster)))
    try:
        jobs = []
        for n in range(2):
            buffer = ctypes.create_string_buffer(128)
            check(lib, "node job", lib.chanpool_cluster_node_job(cluster, n, buffer, len(buffer), None))
            jobs.append(buffer.value)
        sys.stdout.flush()
        child = os.fork()
        if child == 0:  # node 1's process; the cluster belongs to the parent
            code = 1
            try:
                echo(lib, jobs[1])
                code = 0
            except (ChanpoolError, SystemExit) as e:
                print(f"remote_echo.py (node 1): {e}", file=sys.stderr)
            finally:
                os._exit(code)
        try:
            ping(lib, jobs[0], args.count)
        finally:
            _, wait_status = os.waitpid(child, 0)
        if os.waitstatus_to_exitcode(wait_status) != 0:
            raise SystemExit(f"remote_echo.py: the node-1 process failed (wait status {wait_status})")
    finally:
        lib.chanpool_cluster_stop(cluster)
    print(f"remote_echo.py: {args.count} round trips between node 0 and node 1, all verified")
    return 0


if __name__ == "__main__":
    echo_client.run(main, "remote_echo.py")
