#!/usr/bin/env python3
"""A Python client of the C++ echo peer (examples/cpp_peer.cpp), through the chanpool C API
loaded with ctypes (standard library only).

    CHANPOOL_JOB=demo ./cpp_peer &
    CHANPOOL_JOB=demo python3 echo_client.py --lib path/to/libchanpool_c.so [--count N]

Opens "requests" and "replies" (waiting until the peer has created them), sends COUNT
messages of assorted sizes one at a time, checks that each comes back unchanged (growing the
receive buffer when recv says CHANPOOL_TOO_LARGE), then seals "requests" and expects the peer
to seal "replies". The library is found by --lib, else $CHANPOOL_C_LIBRARY, else the loader's
search path (libchanpool_c.so). Exit status 0 on success.

Message format (shared with the peer): bytes [0, 8) are the sequence number as a little-endian
u64; every later byte i is (seq * 7 + i) % 251.
"""
import argparse
import ctypes
import os
import struct
import sys
import time

# Codes from chanpool/channels.h.
OK, FULL, EMPTY, TIMEOUT, CLOSED, PEER_DEAD, TOO_LARGE, INVALID = range(8)
E_NOT_FOUND, E_NOT_READY = -3, -9
WAIT_NS = 10 * 1000 * 1000 * 1000  # every wait bounded: a dead peer fails the example


class ChanpoolError(Exception):
    def __init__(self, lib, what, code):
        super().__init__(f"{what}: {lib.chanpool_strerror(code).decode()} ({code})")
        self.code = code


def load(path):
    """Loads the C API and declares the signatures used here (ctypes guesses int otherwise)."""
    lib = ctypes.CDLL(path)
    channel_p = ctypes.c_void_p  # chanpool_channel_t*, opaque
    size_p = ctypes.POINTER(ctypes.c_size_t)
    lib.chanpool_strerror.argtypes = [ctypes.c_int]
    lib.chanpool_strerror.restype = ctypes.c_char_p
    lib.chanpool_channel_open.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(channel_p)]
    lib.chanpool_channel_open.restype = ctypes.c_int
    lib.chanpool_channel_close.argtypes = [channel_p]
    lib.chanpool_channel_close.restype = None
    lib.chanpool_channel_send.argtypes = [channel_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int64]
    lib.chanpool_channel_send.restype = ctypes.c_int
    lib.chanpool_channel_recv.argtypes = [channel_p, ctypes.c_void_p, ctypes.c_size_t, size_p, ctypes.c_int64]
    lib.chanpool_channel_recv.restype = ctypes.c_int
    lib.chanpool_channel_seal.argtypes = [channel_p]
    lib.chanpool_channel_seal.restype = ctypes.c_int
    lib.chanpool_channel_max_message_bytes.argtypes = [channel_p]
    lib.chanpool_channel_max_message_bytes.restype = ctypes.c_size_t
    return lib


class Channel:
    """An open channel handle; close() (or a with block) frees it."""

    def __init__(self, lib, name, job=None, wait_s=10.0):
        self.lib = lib
        self.handle = ctypes.c_void_p()
        deadline = time.monotonic() + wait_s
        while True:  # the peer may not have created it yet
            rc = lib.chanpool_channel_open(name.encode(), job.encode() if job else None, ctypes.byref(self.handle))
            if rc == OK:
                break
            if rc not in (E_NOT_FOUND, E_NOT_READY) or time.monotonic() > deadline:
                raise ChanpoolError(lib, f"open {name}", rc)
            time.sleep(0.01)
        self.buffer = ctypes.create_string_buffer(16)  # grows on TOO_LARGE

    def send(self, data, timeout_ns=WAIT_NS):
        rc = self.lib.chanpool_channel_send(self.handle, data, len(data), timeout_ns)
        if rc != OK:
            raise ChanpoolError(self.lib, "send", rc)

    def recv(self, timeout_ns=WAIT_NS):
        """Returns the next message as bytes, or None once the channel is sealed and drained."""
        length = ctypes.c_size_t(0)
        while True:
            rc = self.lib.chanpool_channel_recv(self.handle, self.buffer, len(self.buffer), ctypes.byref(length),
                                                timeout_ns)
            if rc == OK:
                return self.buffer.raw[:length.value]
            if rc == CLOSED:
                return None
            if rc != TOO_LARGE:
                raise ChanpoolError(self.lib, "recv", rc)
            # The message stayed queued and length says how big it is.
            self.buffer = ctypes.create_string_buffer(length.value)

    def seal(self):
        self.lib.chanpool_channel_seal(self.handle)

    def close(self):
        if self.handle:
            self.lib.chanpool_channel_close(self.handle)
            self.handle = ctypes.c_void_p()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def message(seq, size):
    return struct.pack("<Q", seq) + bytes((seq * 7 + i) % 251 for i in range(8, size))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lib", default=os.environ.get("CHANPOOL_C_LIBRARY", "libchanpool_c.so"))
    parser.add_argument("--count", type=int, default=100)
    args = parser.parse_args()

    lib = load(args.lib)
    sizes = [8, 9, 96, 97, 1000, 4096, 65536]  # inline (<= 96 bytes by default) and heap messages
    with Channel(lib, "requests") as requests, Channel(lib, "replies") as replies:
        for seq in range(args.count):
            sent = message(seq, sizes[seq % len(sizes)])
            requests.send(sent)
            if replies.recv() != sent:
                print(f"echo_client.py: reply {seq} differs from its request", file=sys.stderr)
                return 1
        requests.seal()  # the peer drains it, then seals the replies
        if replies.recv() is not None:
            print("echo_client.py: expected the peer to seal replies", file=sys.stderr)
            return 1
    print(f"echo_client.py: {args.count} round trips, all verified")
    return 0


def run(main, prog):
    """Exits with main()'s status; a ChanpoolError becomes a message and status 1."""
    try:
        sys.exit(main())
    except ChanpoolError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    run(main, "echo_client.py")
