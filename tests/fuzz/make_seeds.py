#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (corpus/<target>/): a few well-formed inputs each,
from the wire layouts in transport/include/chanpool/transport/wire.hpp, pool/src/wire.hpp and
channels/src/layout.hpp. Run it again after a layout change; the output is committed."""
import os
import re
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


# fuzz_tool_cli.cpp: the first byte picks the tool (its index below), the words follow, one a line.
TOOLS = ["pool_map", "fanin_bench", "latency_bench", "chanpool_cleanup", "mpi_latency", "mpi_bandwidth",
         "mpi_fanin", "mpi_pool_round", "mpi_pool_dynamic", "boost_mq_latency", "ring_floor"]
COMMAND_LINES = {
    "pool_map": ["--imbalance_factor=1", "--nodes 32 --workers_per_node 4 --imbalance_factor 8",
                 "--nodes 1,2,4 --workers_per_node 4 --imbalance_factor 1,8 --plot s.svg --csv s.csv",
                 "--min_time 0 --items_per_worker 500000 --mpi none --python off",
                 "--apply_latency 10000 --nodes 2 --workers_per_node 1", "--from_json a.json b.json --csv x.csv",
                 "--mpi_timeout 30 --seed 7 --chunksize 2 --prefetch 3 --num_iters 2 --json"],
    "fanin_bench": ["--nodes 8 --senders_per_node 4 --messages_per_sender 500 --json",
                    "--nodes 4 --duration 2 --aggregation off --msg_size 128",
                    "--flush_bytes 4096 --flush_deadline_us 10 --credits 8 --agent_spin_us 5 --receiver_spin_us -1",
                    "--sink_capacity 1024 --rxm_buffer_bytes 0 --rxm_queue_depth 0 --stall_timeout 5 --bootstrap embedded",
                    "--mpi --mpi_args --mca=btl --provider tcp"],
    "latency_bench": ["--sizes 8,64,4096,1048576 --iterations 2000 --json",
                      "--channel spsc --wait idle --sizes 64 --iterations 500 --path zerocopy --spin-us 10",
                      "--transport fabric --fabric-mode agent --sizes 64 --hops --agent-spin-us 50",
                      "--transport fabric --bandwidth --sizes 65536 --window 16 --iterations 50 --json",
                      "--no-pin --large-iterations 10 --batch 7 --receiver-spin-us 3 --provider tcp"],
    "chanpool_cleanup": ["--list --json", "--dry-run --job vc1-n0", "-n -l --job x"],
    "mpi_latency": ["--sizes 8,64,65536 --iterations 5000", "--sizes 64 --json --batch 10"],
    "mpi_bandwidth": ["--sizes 4096,65536 --iterations 2 --warmup 1 --json",
                      "--kinds put --sizes 65536 --window 16 --seconds 0.5"],
    "mpi_fanin": ["--msg_size 64 --messages_per_sender 100000", "--duration 2 --json --stall_timeout 0",
                  "--inject_fault corrupt --msg_size 32"],
    "mpi_pool_round": ["--imbalance_factor 8 --json", "--min_time 0.01 --imbalance_factor 8 --num_iters 2",
                       "--print_items 3 --seed 5 --items_per_worker 2", "--inject_fault"],
    "mpi_pool_dynamic": ["--imbalance_factor 1 --json", "--print_items 4 --min_time 0"],
    "boost_mq_latency": ["--sizes 64,65536 --iterations 500 --json", "--no-pin --sizes 8 --batch 3"],
    "ring_floor": ["--version"],
}


# Values that reach the parsers' edge cases: what CLI11 reads as numbers (strtold, strtoull with
# base 0, which wraps "-1"), the lists' separators, the words the tools compare with.
EDGE_VALUES = ["nan", "inf", "-inf", "-1", "0", "1e999", "1e-999", "0x10", "010", "-0", ",", "=", "1,8",
               "none", "off", "on", "auto", "fabric", "shm", "agent", "direct", "both", "embedded", "mpi", "spsc",
               "idle", "spin", "zerocopy", "send,put,get", "4294967296", "18446744073709551616"]


def tool_cli_dict():
    """corpus/fuzz_tool_cli.dict: every option name of the tools' parsers, and EDGE_VALUES."""
    root = os.path.dirname(os.path.dirname(HERE))
    names = set()
    for sub in ["tools", "mpi_compare", "bench", "tools/common"]:
        for f in sorted(os.listdir(os.path.join(root, sub))):
            if f.endswith("_cli.cpp") or f == "ping_pong_flags.hpp":
                text = open(os.path.join(root, sub, f)).read()
                for m in re.finditer(r'add_(?:option|flag)\("([^"]+)"', text):
                    names.update(n.lstrip("!").split("{")[0] for n in m.group(1).split(","))
    # Each word after a newline, so that an insertion makes a word of its own.
    lines = ["# fuzz_tool_cli: the tools' option names and edge values (written by make_seeds.py)"]
    lines += ['"\\x0a%s"' % w for w in sorted(names) + EDGE_VALUES]
    with open(os.path.join(HERE, "corpus", "fuzz_tool_cli.dict"), "w") as f:
        f.write("\n".join(lines) + "\n")


# Each tool's parser, to find its options for the seeds below.
TOOL_SOURCES = {"pool_map": ["tools/pool_map_cli.cpp"], "fanin_bench": ["tools/fanin_bench_cli.cpp"],
                "latency_bench": ["tools/latency_bench_cli.cpp"], "chanpool_cleanup": ["tools/chanpool_cleanup_cli.cpp"],
                "mpi_latency": ["tools/common/ping_pong_flags.hpp"], "mpi_bandwidth": ["mpi_compare/mpi_bandwidth_cli.cpp"],
                "mpi_fanin": ["mpi_compare/mpi_fanin_cli.cpp"], "mpi_pool_round": ["mpi_compare/mpi_pool_cli.cpp"],
                "boost_mq_latency": ["tools/common/ping_pong_flags.hpp", "bench/boost_mq_latency_cli.cpp"]}


def tool_cli_tokens():
    """fuzz_tool_cli.cpp's kTokens, in order."""
    text = open(os.path.join(HERE, "fuzz_tool_cli.cpp")).read()
    table = text[text.index("kTokens[] = {"):text.index("};", text.index("kTokens[] = {"))]
    return re.findall(r'"((?:[^"\\]|\\.)*)"', table)


def tool_options(tool):
    root = os.path.dirname(os.path.dirname(HERE))
    names = []
    for f in TOOL_SOURCES[tool]:
        text = open(os.path.join(root, f)).read()
        names += [m.group(1).split(",")[0] for m in re.finditer(r'add_option\("([^"]+)"', text)]
    return names


def tool_cli_seeds():
    t = "fuzz_tool_cli"
    tool_cli_dict()
    # Every option and the value "1", both as tokens (a byte from 0x80 is a word of its own:
    # kTokens in fuzz_tool_cli.cpp): one changed byte gives the option any token value (nan, -1,
    # 1e999, ...), the values that get no new coverage of their own.
    tokens = tool_cli_tokens()
    one = bytes([0x80 + tokens.index("1")])
    for tool in TOOL_SOURCES:
        for name in tool_options(tool):
            option = bytes([0x80 + tokens.index(name)]) if name in tokens else name.encode()
            write(t, f"{tool}_{name.lstrip('-')}", bytes([TOOLS.index(tool)]) + option + one)
    for tool, lines in COMMAND_LINES.items():
        for i, line in enumerate(lines + ["--help", "--version", "--nosuch"]):
            write(t, f"{tool}_{i}", bytes([TOOLS.index(tool)]) + "\n".join(line.split(" ")).encode())


if __name__ == "__main__":
    transport_seeds()
    pool_seeds()
    segment_seeds()
    capi_seeds()
    tool_cli_seeds()
