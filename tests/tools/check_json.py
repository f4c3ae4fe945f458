#!/usr/bin/env python3
"""Runs a tool and checks that its stdout is the JSON its users rely on.

usage: check_json.py KIND -- COMMAND...
KIND: latency (latency_bench, mpi_latency, boost_mq_latency), latency_hops (latency_bench --hops),
latency_pairs (latency_bench --transport fabric under a launcher: rank 0 against every other rank),
bandwidth (latency_bench --transport fabric --bandwidth), cleanup (chanpool_cleanup --list --json),
fanin (fanin_bench --json) or mpi_bandwidth (mpi_bandwidth --json: one row per --sizes size and
kind, send, put and get unless --kinds says otherwise).
"""
import json
import subprocess
import sys


def fail(message):
    print(f"check_json: {message}", file=sys.stderr)
    sys.exit(1)


def check_latency(doc, command):
    for key in ("tool", "transport", "results"):
        if key not in doc:
            fail(f"missing '{key}' in {doc}")
    if not doc["results"]:
        fail("no results")
    for row in doc["results"]:
        for key in ("size", "one_way_ns", "p99_ns", "iterations"):
            if key not in row:
                fail(f"result row lacks '{key}': {row}")
        if not (row["one_way_ns"] > 0 and row["p99_ns"] > 0 and row["iterations"] > 0):
            fail(f"implausible row: {row}")


HOPS = ["process -> agent", "agent, outbound", "fabric -> far agent", "far agent, inbound", "channel -> process", "one way"]


def check_latency_pairs(doc, command):
    """Under a launcher: every other rank timed against rank 0 in both modes, every size given."""
    check_latency(doc, command)
    if doc.get("launcher") != "mpi":
        fail(f"expected launcher 'mpi', got {doc.get('launcher')!r}")
    ranks = doc.get("ranks", 0)
    if ranks < 2 or len(doc.get("hosts", [])) != ranks:
        fail(f"expected 2 or more ranks, each with its host: {doc.get('ranks')!r}, {doc.get('hosts')!r}")
    sizes = [int(s) for s in command[command.index("--sizes") + 1].split(",")]
    seen = set()
    for pair in doc.get("pairs", []):
        check_latency(pair, command)
        if [r["size"] for r in pair["results"]] != sizes:
            fail(f"pair {pair.get('peer_rank')} {pair.get('mode')}: sizes {[r['size'] for r in pair['results']]}")
        seen.add((pair.get("mode"), pair.get("peer_rank")))
    wanted = {(m, k) for m in ("direct", "agent") for k in range(1, ranks)}
    if seen != wanted:
        fail(f"expected the pairs {sorted(wanted)}, got {sorted(seen)}")


def check_latency_hops(doc, command):
    check_latency(doc, command)
    agent = [m for m in doc.get("modes", []) if m.get("mode") == "agent"]
    if len(agent) != 1 or "hops" not in agent[0]:
        fail(f"no hops in the agent mode: {doc}")
    hops = agent[0]["hops"]
    iterations = int(command[command.index("--iterations") + 1])
    # Both directions, two passes of `iterations` round trips each; the warm-up is left out.
    if hops["messages"] != 4 * iterations or hops["size"] != int(command[command.index("--sizes") + 1]):
        fail(f"expected {4 * iterations} traced messages of the given size: {hops}")
    if [h["hop"] for h in hops["hops"]] != HOPS:
        fail(f"hops not in path order: {hops}")
    one_way = hops["hops"][-1]
    if not (one_way["median_ns"] > 0 and one_way["p99_ns"] >= one_way["median_ns"]):
        fail(f"implausible one-way figures: {one_way}")
    # Each of the first four is a later event minus an earlier one on the same message's path.
    for h in hops["hops"][:4]:
        if h["median_ns"] < 0:
            fail(f"a hop that cannot be negative is: {h}")


BANDWIDTH_KINDS = ["direct send", "direct write", "direct read", "agent message", "agent message in place", "agent put",
                   "agent get"]


def check_bandwidth(doc, command):
    """Every size given by --sizes has all seven kinds, each with a positive figure and ratio."""
    for key in ("tool", "transport", "modes", "bandwidth"):
        if key not in doc:
            fail(f"missing '{key}' in {doc}")
    if sorted(m.get("mode") for m in doc["modes"]) != ["agent", "direct"] or not all(m.get("fabric") for m in doc["modes"]):
        fail(f"expected the direct and agent modes, each naming its fabric: {doc['modes']}")
    sizes = [int(s) for s in command[command.index("--sizes") + 1].split(",")]
    windows = int(command[command.index("--iterations") + 1]) if "--iterations" in command else None
    rows = doc["bandwidth"]
    for size in sizes:
        kinds = [r.get("kind") for r in rows if r.get("size") == size]
        if kinds != BANDWIDTH_KINDS:
            fail(f"size {size}: expected the kinds {BANDWIDTH_KINDS} in that order, got {kinds}")
    if len(rows) != len(BANDWIDTH_KINDS) * len(sizes):
        fail(f"expected {len(BANDWIDTH_KINDS) * len(sizes)} rows, got {len(rows)}")
    for row in rows:
        for key in ("size", "kind", "mb_per_s", "ratio_to_direct", "window", "iterations"):
            if key not in row:
                fail(f"bandwidth row lacks '{key}': {row}")
        if row.get("unsupported"):
            fail(f"the provider should support every kind here: {row}")
        if not (row["mb_per_s"] > 0 and row["ratio_to_direct"] > 0 and row["window"] >= 1 and row["iterations"] >= 1):
            fail(f"implausible row: {row}")
        if row["kind"].startswith("direct") and row["ratio_to_direct"] != 1:
            fail(f"a direct row is its own reference: {row}")
        if windows is not None and row["iterations"] != windows:
            fail(f"expected {windows} timed windows (--iterations): {row}")


def check_cleanup(doc, command):
    if not isinstance(doc, list):
        fail(f"expected a list of segments, got {doc!r}")
    for row in doc:
        for key in ("segment", "job", "name", "bytes", "creator_pid", "live_processes", "stale", "problem"):
            if key not in row:
                fail(f"segment record lacks '{key}': {row}")


def check_fanin(doc, command):
    for key in ("tool", "nodes", "senders", "msg_size", "aggregation", "msgs_per_s", "p50_us", "p99_us",
                "bytes_per_s", "messages", "errors"):
        if key not in doc:
            fail(f"missing '{key}' in {doc}")
    if doc["tool"] != "fanin_bench" or doc["errors"] != 0:
        fail(f"fan-in reported errors: {doc}")
    # Embedded: --nodes N. Under mpirun: one node per rank (-np N).
    nodes = int(command[command.index("--nodes") + 1] if "--nodes" in command else command[command.index("-np") + 1])
    per_node = int(command[command.index("--senders_per_node") + 1])
    per_sender = int(command[command.index("--messages_per_sender") + 1])
    if doc["nodes"] != nodes or doc["senders"] != nodes * per_node:
        fail(f"wrong shape: {doc}")
    if doc["messages"] != nodes * per_node * per_sender:
        fail(f"expected {nodes * per_node * per_sender} messages: {doc}")
    if not (doc["msgs_per_s"] > 0 and doc["p99_us"] >= doc["p50_us"] >= 0):
        fail(f"implausible figures: {doc}")


def check_mpi_bandwidth(doc, command):
    for key in ("tool", "library", "bandwidth"):
        if key not in doc:
            fail(f"missing '{key}' in {doc}")
    sizes = [int(s) for s in command[command.index("--sizes") + 1].split(",")]
    kinds = command[command.index("--kinds") + 1].split(",") if "--kinds" in command else ["send", "put", "get"]
    got = [(row.get("size"), row.get("kind")) for row in doc["bandwidth"]]
    if got != [(size, kind) for size in sizes for kind in kinds]:
        fail(f"expected one row per size and kind ({sizes} x {kinds}), got {got}")
    for row in doc["bandwidth"]:
        for key in ("mb_per_s", "window", "iterations"):
            if key not in row:
                fail(f"bandwidth row lacks '{key}': {row}")
        if not (row["mb_per_s"] > 0 and row["window"] > 0 and row["iterations"] > 0):
            fail(f"implausible row: {row}")
        if row["window"] * row["size"] > 64 << 20:
            fail(f"window * size over 64 MiB: {row}")


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        fail(__doc__)
    kind, command = sys.argv[1], sys.argv[3:]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240)
    if done.returncode != 0:
        fail(f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip()}")
    try:
        doc = json.loads(done.stdout)
    except json.JSONDecodeError as error:
        fail(f"stdout is not one JSON document ({error}): {done.stdout[:400]!r}")
    {"latency": check_latency, "latency_hops": check_latency_hops, "latency_pairs": check_latency_pairs, "bandwidth": check_bandwidth, "cleanup": check_cleanup,
     "fanin": check_fanin, "mpi_bandwidth": check_mpi_bandwidth}[kind](doc, command)
    print(f"ok: {' '.join(command)}")


if __name__ == "__main__":
    main()
