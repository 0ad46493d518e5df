#!/usr/bin/env python3
"""First tracking figures: ferroflow beside `mlflow server`, same data, same load generator, one run.

Usage: bench/quick.py [--runs 10000] [--duration 10]

Needs: a release build of ferroflow (target/release/ferroflow, or FERROFLOW_BIN), `wrk` (Debian package) as the load generator,
and a venv with mlflow==3.17.2 (MLFLOW_VENV, default .venv). Each server gets a fresh SQLite database. The
10,000-run search data set is seeded once through ferroflow's REST API and the database file is copied for
each server, which works because both serve the same MLflow 3.17 schema.
"""

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LUA = os.path.join(ROOT, "bench", "lua")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(base, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method="POST" if body is not None else "GET")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=120) as response:
        text = response.read().decode()
        return json.loads(text) if text.strip().startswith("{") else text


class Server:
    def __init__(self, kind, workdir, db_path):
        self.kind = kind
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        uri = f"sqlite:///{db_path}"
        artifacts = os.path.join(workdir, "artifacts")
        if kind == "ferroflow":
            binary = os.environ.get("FERROFLOW_BIN", os.path.join(ROOT, "target", "release", "ferroflow"))
            command = [binary, "server", "--port", str(self.port),
                       "--backend-store-uri", uri, "--artifacts-destination", artifacts]
        else:
            venv = os.environ.get("MLFLOW_VENV", os.path.join(ROOT, ".venv"))
            command = [os.path.join(venv, "bin", "mlflow"), "server", "--port", str(self.port),
                       "--backend-store-uri", uri, "--artifacts-destination", artifacts]
        self.log = open(os.path.join(workdir, f"{kind}.log"), "w")
        started = time.monotonic()
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        while True:
            try:
                if call(self.base, "/health") is not None:
                    break
            except Exception:
                pass
            if self.process.poll() is not None or time.monotonic() - started > 120:
                raise RuntimeError(f"{kind} did not start; see {self.log.name}")
            time.sleep(0.05)
        self.startup_seconds = time.monotonic() - started

    def rss_mib(self):
        """Resident memory of the server and all its child processes."""
        total = 0
        pids = [self.process.pid]
        seen = set()
        while pids:
            pid = pids.pop()
            if pid in seen:
                continue
            seen.add(pid)
            try:
                with open(f"/proc/{pid}/status") as status:
                    for line in status:
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1])
                with open(f"/proc/{pid}/task/{pid}/children") as children:
                    pids.extend(int(child) for child in children.read().split())
            except FileNotFoundError:
                pass
        return total / 1024

    def stop(self):
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        except Exception:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.log.close()


def wrk(base, path, script, connections, duration, env):
    threads = min(connections, 2)
    output = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s", "--timeout", "60s", "--latency", "-s",
         os.path.join(LUA, script), base + path],
        capture_output=True, text=True, env={**os.environ, **env}, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    latencies = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", output, re.M))
    return {"rps": rate, "p50": latencies.get("50"), "p99": latencies.get("99"),
            "errors": int(errors.group(1)) if errors else 0}


def seed_search_data(base, runs):
    experiment_id = call(base, "/api/2.0/mlflow/experiments/create", {"name": "search-bench"})["experiment_id"]
    rng = random.Random(7)
    for index in range(runs):
        run = call(base, "/api/2.0/mlflow/runs/create", {
            "experiment_id": experiment_id, "start_time": 1700000000000 + index,
            "tags": [{"key": "mlflow.runName", "value": f"run-{index}"}]})["run"]["info"]["run_id"]
        call(base, "/api/2.0/mlflow/runs/log-batch", {
            "run_id": run,
            "params": [{"key": f"p{k}", "value": rng.choice("abcd")} for k in range(5)],
            "metrics": [{"key": f"m{k}", "value": rng.random(), "timestamp": 1, "step": 0} for k in range(5)],
            "tags": [{"key": f"t{k}", "value": rng.choice(["x", "y"])} for k in range(2)]})
        if index % 1000 == 999:
            print(f"  seeded {index + 1}/{runs} runs", flush=True)
    return experiment_id


def page_through(base, experiment_id):
    started = time.monotonic()
    token, pages, runs = None, 0, 0
    while True:
        body = {"experiment_ids": [experiment_id], "filter": "metrics.m1 > 0.5 and params.p1 = 'a'",
                "order_by": ["metrics.m2 DESC"], "max_results": 100}
        if token:
            body["page_token"] = token
        answer = call(base, "/api/2.0/mlflow/runs/search", body)
        pages += 1
        runs += len(answer.get("runs", []))
        token = answer.get("next_page_token")
        if not token:
            return time.monotonic() - started, pages, runs


def measure(kind, workdir, seed_db, experiment_id, duration):
    results = {}
    db = os.path.join(workdir, f"{kind}-write.db")
    server = Server(kind, workdir, db)
    results["startup_s"] = server.startup_seconds
    results["idle_rss_mib"] = server.rss_mib()
    try:
        run_id = call(server.base, "/api/2.0/mlflow/runs/create", {"experiment_id": "0"})["run"]["info"]["run_id"]
        env = {"RUN_ID": run_id, "EXPERIMENT_ID": "0"}
        results["log_metric_c1"] = wrk(server.base, "/api/2.0/mlflow/runs/log-metric", "log_metric.lua", 1, duration, env)
        results["log_metric_c16"] = wrk(server.base, "/api/2.0/mlflow/runs/log-metric", "log_metric.lua", 16, duration, env)
        batch_run = call(server.base, "/api/2.0/mlflow/runs/create", {"experiment_id": "0"})["run"]["info"]["run_id"]
        batch = wrk(server.base, "/api/2.0/mlflow/runs/log-batch", "log_batch.lua", 4, duration,
                    {"RUN_ID": batch_run})
        batch["rows_per_s"] = batch["rps"] * 1000
        results["log_batch_c4"] = batch
        results["create_run_c8"] = wrk(server.base, "/api/2.0/mlflow/runs/create", "create_run.lua", 8, duration, env)
        results["peak_rss_mib"] = server.rss_mib()
    finally:
        server.stop()
    search_db = os.path.join(workdir, f"{kind}-search.db")
    shutil.copy(seed_db, search_db)
    server = Server(kind, workdir, search_db)
    try:
        results["search_c1"] = wrk(server.base, "/api/2.0/mlflow/runs/search", "search_runs.lua", 1, duration,
                                   {"EXPERIMENT_ID": experiment_id})
        seconds, pages, runs = page_through(server.base, experiment_id)
        results["search_all_pages"] = {"seconds": seconds, "pages": pages, "runs": runs}
    finally:
        server.stop()
    return results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10000)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--servers", default="ferroflow,mlflow")
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "quick.json"))
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="ferroflow-bench-")
    print(f"work dir {workdir}")
    seed_db = os.path.join(workdir, "seed.db")
    seeder = Server("ferroflow", workdir, seed_db)
    try:
        print(f"seeding {args.runs} runs through ferroflow")
        experiment_id = seed_search_data(seeder.base, args.runs)
    finally:
        seeder.stop()
    results = {}
    for kind in args.servers.split(","):
        print(f"measuring {kind}", flush=True)
        results[kind] = measure(kind, workdir, seed_db, experiment_id, args.duration)
        print(json.dumps(results[kind], indent=1), flush=True)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as out:
        json.dump(results, out, indent=1)
    if "ferroflow" in results and "mlflow" in results:
        ferro, mlflow = results["ferroflow"], results["mlflow"]
        print("\nscenario | ferroflow | mlflow | ratio")
        for name, key in [("log-metric c1 req/s", ("log_metric_c1", "rps")),
                          ("log-metric c16 req/s", ("log_metric_c16", "rps")),
                          ("log-batch c4 rows/s", ("log_batch_c4", "rows_per_s")),
                          ("create-run c8 req/s", ("create_run_c8", "rps")),
                          ("search-runs c1 req/s", ("search_c1", "rps"))]:
            a, b = ferro[key[0]][key[1]], mlflow[key[0]][key[1]]
            print(f"{name} | {a:.0f} | {b:.0f} | {a / b:.1f}x" if b else f"{name} | {a:.0f} | {b} | n/a")
        print(f"search p50 | {ferro['search_c1']['p50']} | {mlflow['search_c1']['p50']} |")
        print(f"page through all | {ferro['search_all_pages']['seconds']:.2f}s | "
              f"{mlflow['search_all_pages']['seconds']:.2f}s | "
              f"{mlflow['search_all_pages']['seconds'] / ferro['search_all_pages']['seconds']:.1f}x")
        print(f"idle RSS MiB | {ferro['idle_rss_mib']:.0f} | {mlflow['idle_rss_mib']:.0f} |")
        print(f"startup s | {ferro['startup_s']:.2f} | {mlflow['startup_s']:.2f} |")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
