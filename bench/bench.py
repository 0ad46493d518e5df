#!/usr/bin/env python3
"""ferroflow beside `mlflow server` and FastTrackML: same data, same payloads, same load generator, one run.

Run it through `bench/run`, which builds and installs what this needs. Directly:

    MLFLOW_VENV=.venv FASTTRACKML_VENV=bench/.venv-fasttrackml python bench/bench.py [--servers ...]

Every server gets a fresh SQLite database per scenario group (or, with `--backend postgres`, a fresh database
on the machine's PostgreSQL). Load comes from `wrk` (C, event loop, Lua
payloads), which runs beside the server on the same 2 cores; the report shows its CPU time so that a reader
can see it was not the limit. Data sets that would take a peer many minutes to ingest through its API (10,000
runs for search, the 100,000- and 1,000,000-point metrics) are written once through ferroflow's API and the
database file is copied for `mlflow server`, which reads the same MLflow schema; FastTrackML has its own
schema, so it is seeded through its own API. A scenario a server cannot run is reported with the reason.
"""

import argparse
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LUA = os.path.join(ROOT, "bench", "lua")
API = "/api/2.0/mlflow"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(base, path, body=None, timeout=600):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method="POST" if body is not None else "GET")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        text = response.read().decode()
        return json.loads(text) if text.strip().startswith("{") else text


class Databases:
    """Where each scenario group's database lives: a SQLite file in the work dir (the default) or a database
    on the machine's PostgreSQL (`--backend postgres`). A database is named by a label; `copy` duplicates a
    seeded one (a file copy, or `CREATE DATABASE ... TEMPLATE`) so that every server reads the same rows."""

    def __init__(self, backend, workdir):
        self.backend = backend
        self.workdir = workdir
        self.admin = os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
        self.prefix = f"ffbench_{os.getpid()}_"
        self.created = []

    def _psql(self, sql):
        subprocess.run(["psql", self.admin, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql], check=True,
                       capture_output=True)

    def fresh(self, label):
        if self.backend == "postgres":
            name = self.prefix + label.replace("-", "_")
            self._psql(f"DROP DATABASE IF EXISTS {name}")
            self._psql(f"CREATE DATABASE {name}")
            self.created.append(name)
        return label

    def copy(self, source, label):
        if self.backend == "postgres":
            name = self.prefix + label.replace("-", "_")
            self._psql(f"DROP DATABASE IF EXISTS {name}")
            self._psql(f"CREATE DATABASE {name} TEMPLATE {self.prefix + source.replace('-', '_')}")
            self.created.append(name)
        else:
            shutil.copy(self.path(source), self.path(label))
        return label

    def path(self, label):
        return os.path.join(self.workdir, f"{label}.db")

    def uri(self, kind, label):
        if self.backend == "postgres":
            name = self.prefix + label.replace("-", "_")
            host = self.admin.split("://", 1)[1].rsplit("/", 1)[0]
            if kind == "fasttrackml":
                return f"postgres://{host}/{name}?sslmode=disable"
            if kind == "mlflow":  # SQLAlchemy 2.1 reads plain postgresql:// as psycopg 3, which isn't installed
                return f"postgresql+psycopg2://{host}/{name}"
            return f"postgresql://{host}/{name}"
        return f"sqlite://{self.path(label)}" if kind == "fasttrackml" else f"sqlite:///{self.path(label)}"

    def drop_all(self):
        for name in self.created:
            try:
                self._psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            except subprocess.CalledProcessError:
                print(f"could not drop database {name}", flush=True)


DATABASES = None  # set by main()


class Server:
    """One server process on a free port, with its whole process tree's memory sampled."""

    def __init__(self, kind, workdir, db):
        self.kind = kind
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        artifacts = os.path.join(workdir, f"{kind}-artifacts")
        uri = DATABASES.uri(kind, db)
        if kind == "ferroflow":
            binary = os.environ.get("FERROFLOW_BIN", os.path.join(ROOT, "target", "release", "ferroflow"))
            command = [binary, "server", "--port", str(self.port), "--backend-store-uri", uri,
                       "--artifacts-destination", artifacts]
        elif kind == "mlflow":
            venv = os.environ.get("MLFLOW_VENV", os.path.join(ROOT, ".venv"))
            command = [os.path.join(venv, "bin", "mlflow"), "server", "--port", str(self.port),
                       "--backend-store-uri", uri, "--artifacts-destination", artifacts]
        elif kind == "fasttrackml":
            venv = os.environ.get("FASTTRACKML_VENV", os.path.join(ROOT, "bench", ".venv-fasttrackml"))
            command = [os.path.join(venv, "bin", "fml"), "server", "--listen-address", f"127.0.0.1:{self.port}",
                       "--database-uri", uri, "--default-artifact-root", artifacts]
        else:
            raise ValueError(kind)
        self.log = open(os.path.join(workdir, f"{kind}.log"), "a")
        started = time.monotonic()
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        while True:
            try:
                if call(self.base, "/health", timeout=5) is not None:
                    break
            except Exception:
                pass
            if self.process.poll() is not None or time.monotonic() - started > 300:
                # A server that never answered is still stopped: nothing outlives the run.
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait()
                self.log.close()
                raise RuntimeError(f"{kind} did not start; see {self.log.name}")
            time.sleep(0.02)
        self.startup_seconds = time.monotonic() - started
        self.peak_kib = 0
        self._sampling = True
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def pids(self):
        pids, seen = [self.process.pid], []
        while pids:
            pid = pids.pop()
            if pid in seen:
                continue
            seen.append(pid)
            try:
                with open(f"/proc/{pid}/task/{pid}/children") as children:
                    pids.extend(int(child) for child in children.read().split())
            except OSError:
                pass
        return seen

    def rss_kib(self):
        total = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/status") as status:
                    for line in status:
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1])
            except OSError:
                pass
        return total

    def cpu_seconds(self):
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
                    total += (int(fields[11]) + int(fields[12])) / ticks
            except (OSError, IndexError, ValueError):
                pass
        return total

    def _sample(self):
        while self._sampling:
            self.peak_kib = max(self.peak_kib, self.rss_kib())
            time.sleep(0.05)

    def reset_peak(self):
        self.peak_kib = self.rss_kib()

    def stop(self):
        self._sampling = False
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=60)
        except Exception:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.log.close()


def wrk(server, path, script, connections, duration, env, warm_up=3):
    """Runs wrk; reports requests/s, latency percentiles, errors, and wrk's own CPU use. A first run of
    `warm_up` seconds is thrown away: Python servers import lazily and every worker pays on its first call."""
    threads = min(connections, 2)
    if warm_up:
        subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{warm_up}s", "--timeout", "120s",
                        "-s", os.path.join(LUA, script), server.base + path],
                       capture_output=True, env={**os.environ, **env, "COUNTER_BASE": "50000000"}, check=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_cpu_before = server.cpu_seconds()
    output = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s", "--timeout", "120s",
         "--latency", "-s", os.path.join(LUA, script), server.base + path],
        capture_output=True, text=True, env={**os.environ, **env}, check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    latencies = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", output, re.M))
    return {
        "rps": rate,
        "p50": latencies.get("50"),
        "p99": latencies.get("99"),
        "errors": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else None,
        "wrk_cpu_s": round((after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), 2),
        "server_cpu_s": round(server.cpu_seconds() - server_cpu_before, 2),
        "duration_s": duration,
    }


def wrk_or_timed(server, path, script, body, duration, env):
    """A read scenario at c=1: wrk when one request takes under a second; otherwise (a server too slow for
    wrk's window, where it would complete no request) up to 5 requests one after another, timed here."""
    started = time.monotonic()
    call(server.base, path, body)
    probe = time.monotonic() - started
    if probe < 1:
        return wrk(server, path, script, 1, duration, env)
    samples = [probe]
    while len(samples) < 5 and sum(samples) < 300:
        started = time.monotonic()
        call(server.base, path, body)
        samples.append(time.monotonic() - started)
    samples.sort()
    return {"rps": round(len(samples) / sum(samples), 3), "p50": f"{samples[len(samples) // 2]:.2f}s",
            "p99": f"{samples[-1]:.2f}s", "requests": len(samples), "timed_by": "bench.py, one after another"}


def new_run(base, experiment_id="0"):
    return call(base, f"{API}/runs/create", {"experiment_id": experiment_id,
                                             "start_time": 1700000000000})["run"]["info"]["run_id"]


# ----- data sets ---------------------------------------------------------------------------------------------

def seed_search_data(base, runs):
    """10,000 runs with 5 params, 5 metrics and 3 tags each (the run name tag included)."""
    experiment_id = call(base, f"{API}/experiments/create", {"name": "search-bench"})["experiment_id"]
    rng = random.Random(7)
    for index in range(runs):
        run = call(base, f"{API}/runs/create", {
            "experiment_id": experiment_id, "start_time": 1700000000000 + index,
            "tags": [{"key": "mlflow.runName", "value": f"run-{index}"}]})["run"]["info"]["run_id"]
        call(base, f"{API}/runs/log-batch", {
            "run_id": run,
            "params": [{"key": f"p{k}", "value": rng.choice("abcd")} for k in range(5)],
            "metrics": [{"key": f"m{k}", "value": rng.random(), "timestamp": 1700000000000, "step": 0}
                        for k in range(5)],
            "tags": [{"key": f"t{k}", "value": rng.choice(["x", "y"])} for k in range(2)]})
        if index % 2000 == 1999:
            print(f"    seeded {index + 1}/{runs} runs", flush=True)
    return experiment_id


def seed_long_metric(base, points, key):
    run = new_run(base)
    for start in range(0, points, 1000):
        call(base, f"{API}/runs/log-batch", {"run_id": run, "metrics": [
            {"key": key, "value": (step % 977) / 977.0, "timestamp": 1700000000000 + step, "step": step}
            for step in range(start, min(start + 1000, points))]})
    return run


SEARCH_BODY = {"filter": "metrics.m1 > 0.5 and params.p1 = 'a'", "order_by": ["metrics.m2 DESC"],
               "max_results": 100}


def page_through(base, experiment_id):
    started = time.monotonic()
    token, pages, runs = None, 0, 0
    while True:
        body = {"experiment_ids": [experiment_id], **SEARCH_BODY}
        if token:
            body["page_token"] = token
        answer = call(base, f"{API}/runs/search", body)
        pages += 1
        runs += len(answer.get("runs", []))
        token = answer.get("next_page_token")
        if not token:
            return {"seconds": round(time.monotonic() - started, 3), "pages": pages, "runs": runs}


def fetch_history(server, run_id, key):
    """The whole history, paged the way the mlflow client pages it (25,000 per request)."""
    server.reset_peak()
    started = time.monotonic()
    token, points = None, 0
    while True:
        query = f"{API}/metrics/get-history?run_id={run_id}&metric_key={key}&max_results=25000"
        if token:
            query += f"&page_token={urllib.request.quote(token)}"
        answer = call(server.base, query)
        points += len(answer.get("metrics", []))
        token = answer.get("next_page_token")
        if not token:
            break
    return {"seconds": round(time.monotonic() - started, 3), "points": points,
            "peak_rss_mib": round(server.peak_kib / 1024, 1)}


def physical_limit(workdir, rows):
    """The log-batch rows inserted straight into the database, no server: on SQLite one prepared statement,
    on PostgreSQL one multi-row INSERT, 1000 rows a transaction, into MLflow's `metrics` table as ferroflow
    created it (the same indexes)."""
    label = DATABASES.fresh("physical")
    Server("ferroflow", workdir, label).stop()
    batches = [[(f"m{step % 10}", step + 0.25, 1700000000000 + step, step) for step in range(start, start + 1000)]
               for start in range(0, rows, 1000)]
    run = "INSERT INTO runs (run_uuid, experiment_id, lifecycle_stage, status) VALUES ('r', 0, 'active', 'RUNNING')"
    if DATABASES.backend == "postgres":
        import psycopg2
        import psycopg2.extras
        connection = psycopg2.connect(DATABASES.uri("ferroflow", label))
        with connection.cursor() as cursor:
            cursor.execute(run)
        connection.commit()
        started = time.monotonic()
        for batch in batches:
            with connection.cursor() as cursor:
                psycopg2.extras.execute_values(
                    cursor, "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES %s",
                    batch, template="(%s, %s, %s, 'r', %s, false)", page_size=1000)
            connection.commit()
        seconds = time.monotonic() - started
    else:
        connection = sqlite3.connect(DATABASES.path(label))
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute(run)
        connection.commit()
        started = time.monotonic()
        for batch in batches:
            connection.executemany(
                "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, 'r', ?, 0)",
                batch)
            connection.commit()
        seconds = time.monotonic() - started
    connection.close()
    return {"rows_per_s": round(rows / seconds), "rows": rows}


# ----- scenario groups ----------------------------------------------------------------------------------------

def measure_writes(kind, workdir, duration):
    server = Server(kind, workdir, DATABASES.fresh(f"{kind}-writes"))
    result = {"startup_s": round(server.startup_seconds, 3)}
    try:
        time.sleep(2)
        result["idle_rss_mib"] = round(server.rss_kib() / 1024, 1)
        server.reset_peak()
        env = {"RUN_ID": new_run(server.base), "EXPERIMENT_ID": "0"}
        result["log_metric_c1"] = wrk(server, f"{API}/runs/log-metric", "log_metric.lua", 1, duration, env)
        env = {"RUN_ID": new_run(server.base), "EXPERIMENT_ID": "0"}
        result["log_metric_c16"] = wrk(server, f"{API}/runs/log-metric", "log_metric.lua", 16, duration, env)
        batch = wrk(server, f"{API}/runs/log-batch", "log_batch.lua", 4, duration, {"RUN_ID": new_run(server.base)})
        batch["rows_per_s"] = round(batch["rps"] * 1000)
        result["log_batch_c4"] = batch
        result["create_run_c8"] = wrk(server, f"{API}/runs/create", "create_run.lua", 8, duration, env)
        result["peak_rss_mib"] = round(server.peak_kib / 1024, 1)
    finally:
        server.stop()
    return result


def measure_reads(kind, workdir, seeded, duration):
    """Search over 10,000 runs and the long metric histories, on a copy of the seeded database."""
    if kind == "fasttrackml":
        server = Server(kind, workdir, DATABASES.fresh(f"{kind}-reads"))
        print("    seeding fasttrackml through its API", flush=True)
        experiment_id = seed_search_data(server.base, seeded["runs"])
        histories = {key: seed_long_metric(server.base, points, key) for key, points in seeded["histories"].items()}
    else:
        server = Server(kind, workdir, DATABASES.copy(seeded["db"], f"{kind}-reads"))
        experiment_id = seeded["experiment_id"]
        histories = seeded["history_runs"]
    result = {}
    try:
        env = {"EXPERIMENT_ID": experiment_id}
        body = {"experiment_ids": [experiment_id], **SEARCH_BODY}
        result["search_c1"] = wrk_or_timed(server, f"{API}/runs/search", "search_runs.lua", body, duration, env)
        result["search_all_pages"] = page_through(server.base, experiment_id)
        for key, run_id in histories.items():
            result[f"history_{key}"] = fetch_history(server, run_id, key)
    finally:
        server.stop()
    return result


def measure_large(kind, workdir, shape):
    """FastTrackML's "large" shape (experiments x runs x metrics, one point per metric), scaled: each of 4
    client threads creates runs and logs their metrics in log-batch requests of 1,000, over keep-alive
    connections; then every run of one experiment is paged through with a metric filter and order."""
    experiments, runs, metrics = shape
    server = Server(kind, workdir, DATABASES.fresh(f"{kind}-large"))
    result = {"shape": f"{experiments}x{runs}x{metrics}"}
    try:
        experiment_ids = [call(server.base, f"{API}/experiments/create", {"name": f"large-{index}"})["experiment_id"]
                          for index in range(experiments)]
        chunks = []
        for start in range(0, metrics, 1000):
            parts = [f'{{"key":"m{key}","value":{key % 97 / 97},"timestamp":1700000000000,"step":0}}'
                     for key in range(start, min(start + 1000, metrics))]
            chunks.append(",".join(parts))
        jobs = [experiment_id for experiment_id in experiment_ids for _ in range(runs)]
        lock = threading.Lock()
        failures = []

        def worker():
            import http.client
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)

            def post(path, body):
                connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                payload = response.read()
                if response.status != 200:
                    raise RuntimeError(f"{path}: {response.status} {payload[:200]!r}")
                return payload

            while True:
                with lock:
                    if not jobs or failures:
                        return
                    experiment_id = jobs.pop()
                try:
                    created = json.loads(post(f"{API}/runs/create", json.dumps(
                        {"experiment_id": experiment_id, "start_time": 1700000000000})))
                    run_id = created["run"]["info"]["run_id"]
                    for chunk in chunks:
                        post(f"{API}/runs/log-batch", '{"run_id":"' + run_id + '","metrics":[' + chunk + "]}")
                except Exception as error:
                    with lock:
                        failures.append(str(error))
                    return

        server.reset_peak()
        started = time.monotonic()
        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.monotonic() - started
        if failures:
            raise RuntimeError(failures[0])
        rows = experiments * runs * metrics
        result["ingest_seconds"] = round(seconds, 2)
        result["ingest_rows_per_s"] = round(rows / seconds)
        result["ingest_peak_rss_mib"] = round(server.peak_kib / 1024, 1)
        started = time.monotonic()
        token, pages, found = None, 0, 0
        while True:
            body = {"experiment_ids": [experiment_ids[0]], "filter": "metrics.m7 > 0.01",
                    "order_by": ["metrics.m3 DESC"], "max_results": 100}
            if token:
                body["page_token"] = token
            answer = call(server.base, f"{API}/runs/search", body)
            pages += 1
            found += len(answer.get("runs", []))
            token = answer.get("next_page_token")
            if not token:
                break
        result["search_seconds"] = round(time.monotonic() - started, 3)
        result["search_runs"] = found
    finally:
        server.stop()
    return result


# ----- traces -------------------------------------------------------------------------------------------------

SPANS_PER_OTLP_REQUEST = 100  # bench/lua/otlp_json.lua: 10 traces of 10 spans

CLIENT_TRACES = """
import os, sys, time
import mlflow
mlflow.set_tracking_uri(sys.argv[1])
mlflow.set_experiment("client-traces")

@mlflow.trace(span_type="TOOL")
def tool(x):
    return x * 2

@mlflow.trace(span_type="LLM")
def llm(x):
    return tool(x) + tool(x + 1)

@mlflow.trace(span_type="AGENT")
def agent(x):
    return llm(x) + llm(x + 1)

count = int(sys.argv[2])
agent(0)
mlflow.flush_trace_async_logging(terminate=False)
started = time.monotonic()
for index in range(count):
    agent(index)
mlflow.flush_trace_async_logging(terminate=False)
print(time.monotonic() - started)
"""
CLIENT_SPANS_PER_TRACE = 7


def otlp_trace(index, spans):
    """One trace of `spans` spans in OTLP JSON, tagged group=g<index % 10> through its resource."""
    trace_id = f"{index:032x}"
    start = 1700000000000000000 + index * 1000000
    items = []
    for span in range(spans):
        parent = f',"parentSpanId":"{index * 16:016x}"' if span else ""
        items.append(
            f'{{"traceId":"{trace_id}","spanId":"{index * 16 + span:016x}"{parent},"name":"s{span}","kind":1,'
            f'"startTimeUnixNano":"{start + span * 1000}","endTimeUnixNano":"{start + span * 1000 + 500}",'
            '"attributes":[{"key":"mlflow.spanType","value":{"stringValue":"\\"LLM\\""}}],"status":{"code":1}}')
    return (f'{{"resource":{{"attributes":[{{"key":"group","value":{{"stringValue":"g{index % 10}"}}}}]}},'
            f'"scopeSpans":[{{"scope":{{"name":"bench"}},"spans":[{",".join(items)}]}}]}}')


def post_otlp(base, experiment_id, body):
    request = urllib.request.Request(base + "/v1/traces", data=body.encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("x-mlflow-experiment-id", experiment_id)
    with urllib.request.urlopen(request, timeout=600) as response:
        response.read()


def seed_traces(workdir, count):
    """`count` traces of 2 spans written once through ferroflow's OTLP endpoint; the file is reused."""
    db = DATABASES.fresh("traces-seed")
    server = Server("ferroflow", workdir, db)
    try:
        print(f"  seeding {count} traces through ferroflow's OTLP endpoint", flush=True)
        experiment_id = call(server.base, f"{API}/experiments/create", {"name": "trace-search"})["experiment_id"]
        for start in range(0, count, 100):
            resources = ",".join(otlp_trace(index, 2) for index in range(start, min(start + 100, count)))
            post_otlp(server.base, experiment_id, f'{{"resourceSpans":[{resources}]}}')
    finally:
        server.stop()
    return {"db": db, "experiment_id": experiment_id, "count": count}


def measure_traces(kind, workdir, seeded, duration):
    """OTLP ingest (wrk, 100 spans a request, c=4), the mlflow client's trace path, and search over the
    seeded traces with a tag filter."""
    if kind == "fasttrackml":
        raise RuntimeError("FastTrackML has no trace API")
    result = {}
    server = Server(kind, workdir, DATABASES.fresh(f"{kind}-traces"))
    try:
        experiment_id = call(server.base, f"{API}/experiments/create", {"name": "otlp"})["experiment_id"]
        ingest = wrk(server, "/v1/traces", "otlp_json.lua", 4, duration, {"EXPERIMENT_ID": experiment_id})
        ingest["spans_per_s"] = round(ingest["rps"] * SPANS_PER_OTLP_REQUEST)
        result["otlp_c4"] = ingest
        python = os.path.join(os.environ.get("MLFLOW_VENV", os.path.join(ROOT, ".venv")), "bin", "python")
        count = 200
        env = dict(os.environ, MLFLOW_ENABLE_ASYNC_TRACE_LOGGING="true", MLFLOW_DISABLE_TELEMETRY="true")
        finished = subprocess.run([python, "-c", CLIENT_TRACES, server.base, str(count)], env=env,
                                  capture_output=True, text=True, timeout=900)
        if finished.returncode != 0:
            raise RuntimeError(f"client trace path failed: {finished.stderr[-400:]}")
        seconds = float(finished.stdout.strip().splitlines()[-1])
        result["client"] = {"traces": count, "seconds": round(seconds, 2),
                            "spans_per_s": round(count * CLIENT_SPANS_PER_TRACE / seconds)}
    finally:
        server.stop()
    server = Server(kind, workdir, DATABASES.copy(seeded["db"], f"{kind}-trace-search"))
    try:
        body = {"locations": [{"type": "MLFLOW_EXPERIMENT",
                               "mlflow_experiment": {"experiment_id": seeded["experiment_id"]}}],
                "filter": "tag.group = 'g3'", "max_results": 100, "order_by": ["timestamp_ms DESC"]}
        found = len(call(server.base, "/api/3.0/mlflow/traces/search", body).get("traces", []))
        expected = min(100, seeded["count"] // 10)
        if found != expected:
            raise RuntimeError(f"trace search found {found} traces, not {expected}")
        result["search_c1"] = wrk_or_timed(server, "/api/3.0/mlflow/traces/search", "search_traces.lua", body,
                                           duration, {"EXPERIMENT_ID": seeded["experiment_id"]})
        if not result["search_c1"].get("rps"):
            raise RuntimeError("trace search completed no request")
    finally:
        server.stop()
    return result


def seed_reads(workdir, runs, histories):
    """Writes the read data set once through ferroflow and keeps the database file."""
    db = DATABASES.fresh("seed")
    server = Server("ferroflow", workdir, db)
    try:
        print(f"  seeding {runs} runs and {sorted(histories.values())} point metrics through ferroflow", flush=True)
        experiment_id = seed_search_data(server.base, runs)
        history_runs = {key: seed_long_metric(server.base, points, key) for key, points in histories.items()}
    finally:
        server.stop()
    return {"db": db, "experiment_id": experiment_id, "history_runs": history_runs, "runs": runs,
            "histories": histories}


# ----- report -------------------------------------------------------------------------------------------------

ROWS = [
    ("log-metric, c=1 (req/s)", ("writes", "log_metric_c1", "rps"), True),
    ("log-metric, c=1 p50 / p99", ("writes", "log_metric_c1", "p50", "p99"), None),
    ("log-metric, c=16 (req/s)", ("writes", "log_metric_c16", "rps"), True),
    ("log-metric, c=16 p50 / p99", ("writes", "log_metric_c16", "p50", "p99"), None),
    ("log-batch 1000 metrics, c=4 (rows/s)", ("writes", "log_batch_c4", "rows_per_s"), True),
    ("create-run, c=8 (req/s)", ("writes", "create_run_c8", "rps"), True),
    ("search-runs 10k runs, c=1 (req/s)", ("reads", "search_c1", "rps"), True),
    ("search-runs p50 / p99", ("reads", "search_c1", "p50", "p99"), None),
    ("search-runs, all pages (s)", ("reads", "search_all_pages", "seconds"), False),
    ("history 100k points (s)", ("reads", "history_h100k", "seconds"), False),
    ("history 100k points, peak RSS (MiB)", ("reads", "history_h100k", "peak_rss_mib"), False),
    ("history 1M points (s)", ("reads", "history_h1m", "seconds"), False),
    ("history 1M points, peak RSS (MiB)", ("reads", "history_h1m", "peak_rss_mib"), False),
    ("large shape: ingest (metric rows/s)", ("large", "ingest_rows_per_s"), True),
    ("large shape: ingest peak RSS (MiB)", ("large", "ingest_peak_rss_mib"), False),
    ("large shape: search one experiment, all pages (s)", ("large", "search_seconds"), False),
    ("OTLP ingest, c=4 (spans/s)", ("traces", "otlp_c4", "spans_per_s"), True),
    ("mlflow client trace path (spans/s)", ("traces", "client", "spans_per_s"), True),
    ("search-traces, tag filter, c=1 (req/s)", ("traces", "search_c1", "rps"), True),
    ("search-traces p50 / p99", ("traces", "search_c1", "p50", "p99"), None),
    ("idle RSS (MiB)", ("writes", "idle_rss_mib"), False),
    ("peak RSS under write load (MiB)", ("writes", "peak_rss_mib"), False),
    ("start to first /health (s)", ("writes", "startup_s"), False),
]


def lookup(result, path):
    value = result
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def render(results, meta):
    servers = [kind for kind in ("ferroflow", "mlflow", "fasttrackml") if kind in results]
    backend = {"sqlite": "SQLite", "postgres": "PostgreSQL"}[meta.get("backend", "sqlite")]
    lines = [f"Measured {meta['date']} on {meta['machine']}, every server on {backend}; command: "
             f"`{meta['command']}`.", ""]
    header = "| scenario | " + " | ".join(servers) + " | " + " | ".join(
        f"ferroflow / {kind}" for kind in servers if kind != "ferroflow") + " |"
    lines += [header, "|" + " --- |" * (1 + len(servers) + len(servers) - 1)]
    for title, path, higher_is_better in ROWS:
        cells, numbers = [], {}
        for kind in servers:
            result = results[kind]
            if "error" in result.get(path[0], {}):
                cells.append(f"not run: {result[path[0]]['error']}")
                continue
            if higher_is_better is None:
                first = lookup(result, path[:3])
                second = lookup(result, path[:2] + (path[3],))
                cells.append(f"{first} / {second}" if first else "n/a")
                continue
            value = lookup(result, path)
            numbers[kind] = value
            cells.append("n/a" if value is None else f"{value:,.3g}" if value < 100 else f"{value:,.0f}")
        ratios = []
        for kind in servers:
            if kind == "ferroflow":
                continue
            ours, theirs = numbers.get("ferroflow"), numbers.get(kind)
            if higher_is_better is None or not ours or not theirs:
                ratios.append("")
            else:
                ratio = ours / theirs if higher_is_better else theirs / ours
                ratios.append(f"{ratio:,.1f}x")
        lines.append(f"| {title} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    lines.append("")
    lines.append("Ratios are ferroflow's advantage: above 1x means ferroflow is faster or smaller.")
    if "physical_limit" in meta:
        how = ("one multi-row INSERT" if backend == "PostgreSQL" else "one prepared statement")
        lines.append(f"{backend} physical limit for the log-batch rows ({how}, 1000 rows a transaction, no "
                     f"server): {meta['physical_limit']['rows_per_s']:,} rows/s.")
    if "large_shape" in meta:
        lines.append(f"Large shape: {meta['large_shape']} (experiments x runs x metrics, one point each), "
                     "scaled from FastTrackML's 50x1500x1500, which `mlflow server` could not ingest in 10 "
                     "minutes on this machine; 4 client threads, log-batch of 1,000.")
    if "traces" in meta:
        lines.append(f"Trace search runs over {meta['traces']:,} traces of 2 spans (one experiment), filtered "
                     "on a tag that a tenth of them carry; OTLP ingest sends OTLP/HTTP JSON, 10 traces of 10 "
                     "spans a request; the client path is `@mlflow.trace` (7 spans a trace, async export) in "
                     "the mlflow 3.17.2 client, which is itself the limit there.")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--servers", default="ferroflow,mlflow,fasttrackml")
    parser.add_argument("--runs", type=int, default=10000)
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per wrk scenario")
    parser.add_argument("--history-points", default="100000,1000000")
    parser.add_argument("--traces", type=int, default=100000, help="traces seeded for the trace search")
    parser.add_argument("--large-shape", default="5x10x1500",
                        help="experiments x runs x metrics of FastTrackML's large shape (theirs: 50x1500x1500)")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite",
                        help="database of every server: a fresh SQLite file per scenario group, or a fresh "
                             "database on the PostgreSQL of BENCH_POSTGRES (default postgresql://postgres@127.0.0.1:5432/test)")
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    args = parser.parse_args()
    global DATABASES
    servers = args.servers.split(",")
    workdir = tempfile.mkdtemp(prefix="ferroflow-bench-")
    small, large = (int(points) for points in args.history_points.split(","))
    histories = {"h100k": small, "h1m": large}
    large_shape = tuple(int(part) for part in args.large_shape.split("x"))
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{os.cpu_count()} cores, {round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GiB",
            "command": "bench/run " + " ".join(sys.argv[1:]), "large_shape": args.large_shape,
            "traces": args.traces, "backend": args.backend}
    DATABASES = Databases(args.backend, workdir)
    print(f"work dir {workdir}; backend {args.backend}", flush=True)
    results = {kind: {} for kind in servers}
    try:
        meta["physical_limit"] = physical_limit(workdir, 200_000)
        seeded = seed_reads(workdir, args.runs, histories)
        seeded_traces = seed_traces(workdir, args.traces)
        for kind in servers:
            print(f"{kind}: writes", flush=True)
            try:
                results[kind]["writes"] = measure_writes(kind, workdir, args.duration)
            except Exception as error:
                results[kind]["writes"] = {"error": str(error)}
            print(f"{kind}: reads", flush=True)
            try:
                results[kind]["reads"] = measure_reads(kind, workdir, seeded, args.duration)
            except Exception as error:
                results[kind]["reads"] = {"error": str(error)}
            print(f"{kind}: traces", flush=True)
            try:
                results[kind]["traces"] = measure_traces(kind, workdir, seeded_traces, args.duration)
            except Exception as error:
                results[kind]["traces"] = {"error": str(error)}
            print(f"{kind}: large shape {args.large_shape}", flush=True)
            try:
                results[kind]["large"] = measure_large(kind, workdir, large_shape)
            except Exception as error:
                results[kind]["large"] = {"error": str(error)}
            print(json.dumps(results[kind], indent=1), flush=True)
    finally:
        DATABASES.drop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(args.out, exist_ok=True)
    suffix = "" if args.backend == "sqlite" else f"-{args.backend}"
    with open(os.path.join(args.out, f"latest{suffix}.json"), "w") as out:
        json.dump({"meta": meta, "results": results}, out, indent=1)
    table = render(results, meta)
    with open(os.path.join(args.out, f"latest{suffix}.md"), "w") as out:
        out.write(table + "\n")
    print("\n" + table)


if __name__ == "__main__":
    sys.exit(main())
