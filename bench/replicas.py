#!/usr/bin/env python3
"""Throughput of one ferroflow replica against three, on one PostgreSQL database, measured in one run.

    .venv/bin/python bench/replicas.py [--duration 10] [--connections 18]

Each replica count gets a fresh PostgreSQL database on 127.0.0.1:5432. The same total number of wrk
connections is spread evenly over the replicas (one wrk process per replica, run at the same time), each
logging single metrics to a run of its own; the table gives the summed requests/s. Every process shares the
machine's 2 cores with PostgreSQL and wrk, so this shows what replicas cost and keep, not cluster scaling.
"""

import argparse
import os
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def psql(statement):
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-c", statement],
                   check=True, capture_output=True)


def start_replica(uri, workdir, index):
    port = bench.free_port()
    binary = os.environ.get("FERROFLOW_BIN", os.path.join(bench.ROOT, "target", "release", "ferroflow"))
    log = open(os.path.join(workdir, f"replica-{index}.log"), "w")
    process = subprocess.Popen([binary, "server", "--port", str(port), "--backend-store-uri", uri,
                                "--artifacts-destination", os.path.join(workdir, "artifacts")],
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if bench.call(base, "/health", timeout=2):
                return process, base
        except Exception:
            time.sleep(0.05)
    raise RuntimeError(f"replica {index} did not start")


def measure(replicas, connections, duration, workdir):
    database = f"ff_replicas_{uuid.uuid4().hex[:8]}"
    psql(f"CREATE DATABASE {database}")
    uri = f"postgresql://postgres@127.0.0.1:5432/{database}"
    processes = []
    try:
        for index in range(replicas):
            processes.append(start_replica(uri, workdir, index))
        loads = []
        per_replica = max(1, connections // replicas)
        for _, base in processes:
            run_id = bench.new_run(base)
            loads.append(subprocess.Popen(
                ["wrk", "-t", "1", "-c", str(per_replica), "-d", f"{duration}s", "--latency", "-s",
                 os.path.join(bench.LUA, "log_metric.lua"), base + bench.API + "/runs/log-metric"],
                stdout=subprocess.PIPE, text=True, env={**os.environ, "RUN_ID": run_id}))
        total = 0.0
        for load in loads:
            output, _ = load.communicate()
            total += float(output.split("Requests/sec:")[1].split()[0])
        return total
    finally:
        for process, _ in processes:
            process.terminate()
            process.wait(timeout=30)
        psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=18)
    args = parser.parse_args()
    workdir = os.path.join("/tmp", f"ferroflow-replicas-{uuid.uuid4().hex[:6]}")
    os.makedirs(workdir)
    one = measure(1, args.connections, args.duration, workdir)
    three = measure(3, args.connections, args.duration, workdir)
    print(f"log-metric on PostgreSQL, {args.connections} connections in all, {args.duration} s:")
    print("| replicas | requests/s |\n| --- | --- |")
    print(f"| 1 | {one:,.0f} |\n| 3 | {three:,.0f} |")
    print(f"three / one: {three / one:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
