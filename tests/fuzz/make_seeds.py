#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (corpus/<target>/): a few well-formed inputs each,
from the wire layouts in transport/include/chanpool/transport/wire.hpp, pool/src/wire.hpp and
channels/src/layout.hpp. Run it again after a layout change; the output is committed."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
JOB_KEY = 0x6B6579206A6F6221  # fuzz_transport_frame.cpp's kJobKey


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def pad8(b):
    return b + b"\0" * (-len(b) % 8)


def frame(kind, body, count=0, sequence=0, src=1):
    return struct.pack("<IHHQIIII", 0x31465043, 3, kind, JOB_KEY, src, 32 + len(body), count, sequence) + body


def transport_seeds():
    t = "fuzz_transport_frame"
    write(t, "hello", frame(1, b""))
    write(t, "heartbeat", frame(2, b""))
    write(t, "goodbye", frame(8, b""))
    write(t, "credit", frame(4, b"", count=3))
    msgs = b""
    for i, payload in enumerate([b"hello", b"x" * 64, b""]):
        msgs += struct.pack("<IIHHIQ", len(payload), i, 1 if i == 1 else 0, 0, 1234, i) + pad8(payload)
    msgs += struct.pack("<IIHHIQ", 1 << 20, 0, 2, 0, 1234, 77)  # a large message: payload comes apart
    # remote_read (large | remote_read): its large_source {address, key} follows the header
    msgs += struct.pack("<IIHHIQ", 1 << 20, 0, 2 | 4, 0, 1234, 78) + struct.pack("<QQ", 0x10000, 5)
    write(t, "batch", frame(3, msgs, count=5, sequence=0))
    name = b"pool-tasks"
    write(t, "resolve", frame(5, struct.pack("<IIQ", 1234, len(name), 9) + name))
    write(t, "resolve_reply", frame(6, struct.pack("<IiQIIQ", 1234, 0, 9, 3, 0, 4096)))
    acks = b"".join(struct.pack("<IB3xQ", 1234, 0, k) for k in range(3))
    write(t, "ack", frame(7, acks, count=3))
    # rma_request: token, op (put), reserved, region, generation, offset, length, key, address,
    # notify channel (none), reserved, tag; rma_done: token, error, reserved.
    write(t, "rma_request", frame(10, struct.pack("<QHHIQQQQQIIQ", 5, 1, 0, 0, 1, 64, 4096, 7, 0, 0xFFFFFFFF, 0, 0)))
    write(t, "rma_done", frame(11, struct.pack("<QiI", 5, 0, 0)))
    write(t, "large_done", frame(12, struct.pack("<QQ", 78, 79), count=2))


def pool_seeds():
    t = "fuzz_pool_wire"
    # task_header: magic, version, kind, task_id, job, attempt, first_item, item_count, chunk
    items = [b"\x01\x02", b"", b"abcdef"]
    payload = b"".join(struct.pack("<I", len(a)) + a for a in items)
    task = struct.pack("<IHHQIIQII", 0x4B545043, 1, 1, 0xABCDEF, 1, 0, 10, len(items), 2) + payload
    write(t, "task_chunk", b"\x00" + task)
    write(t, "task_stop", b"\x00" + struct.pack("<IHHQIIQII", 0x4B545043, 1, 2, 0, 0, 0, 0, 0, 0))
    # result_header: magic, version, kind, node, worker, pid, job, first_item, item_count, chunk,
    # busy_ns, attempt, flags
    recs = [(1, b"result"), (0, b"it raised")]
    body = b"".join(struct.pack("<IB3x", len(r), ok) + r for ok, r in recs)
    hdr = struct.pack("<IHHIIIIQIIQII", 0x53525043, 1, 1, 0, 1, 999, 1, 10, len(recs), 2, 5000, 0, 1)
    write(t, "results", b"\x01" + hdr + body)
    lost = struct.pack("<IHHIIIIQIIQII", 0x53525043, 1, 3, 1, 0, 999, 1, 10, 3, 2, 0, 0, 1)
    write(t, "worker_lost", b"\x01" + lost + b"killed by signal 9")
    ready = struct.pack("<IHHIIIIQIIQII", 0x53525043, 1, 2, 0, 0, 999, 0, 0, 0, 0, 0, 0, 0)
    write(t, "worker_ready", b"\x01" + ready)


def patch(offset, width_code, value):
    return struct.pack("<IBQ", offset, width_code, value)


def segment_seeds():
    t = "fuzz_channel_segment"
    write(t, "open_pristine", b"\x00\x00")
    write(t, "open_version2", b"\x00\x00" + patch(8, 2, 2))  # an older layout version
    write(t, "open_capacity", b"\x00\x00" + patch(56, 2, 16))
    write(t, "open_short", b"\x00\xfe")
    write(t, "use_pristine", b"\x01")
    # Offsets past the 320-byte header: control block (tail, head, futex words), then the ring.
    write(t, "use_tail_head", b"\x01" + patch(0, 3, 5) + patch(64, 3, 3))
    write(t, "use_waiters", b"\x01" + patch(128 + 8, 2, 7) + patch(128 + 12, 2, 9))
    write(t, "use_slot_length", b"\x01" + patch(4096 - 320 + 8, 2, 100000))


def capi_seeds():
    t = "fuzz_capi"
    create = bytes([0, 0, 0, 0])           # create c0 with the default config
    send = bytes([2, 0]) + struct.pack("<H", 40) + b"\x01" + b"\x00"
    recv = bytes([3, 0]) + struct.pack("<H", 128) + b"\x01\x01\x00"
    claim = bytes([4, 0]) + struct.pack("<H", 5000) + b"\x00" + bytes([5, 0]) + struct.pack("<H", 100)
    poll = bytes([9, 0, 1])
    write(t, "create_send_recv", create + send + recv + poll)
    write(t, "claim_commit", create + claim + recv)
    write(t, "pollset", create + bytes([13, 0, 13, 0, 1, 0]) + send + bytes([14, 0, 4, 0, 0]))
    write(t, "bad_name", bytes([0, 1, 1, 250]) + b"../../etc")


if __name__ == "__main__":
    transport_seeds()
    pool_seeds()
    segment_seeds()
    capi_seeds()
