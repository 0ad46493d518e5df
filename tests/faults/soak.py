"""Soak: sustained mixed load on one ferroflow while its resident memory (RSS) is sampled.

    scripts/soak                  # 10 minutes (the full soak)
    scripts/soak --short          # 60 seconds (what CI runs, through tests/faults/test_soak.py)
    scripts/soak --minutes 30 --clients 16 --out soak.json

ferroflow starts on a fresh SQLite database and a local artifact directory in a temp dir.
`--clients` threads loop over a mix of requests: log-metric, log-batch (20 metrics, 5 params, 5 tags),
set-tag, get-run, search-runs, get-history, a 16 KiB artifact upload and its download, and (except in
the fixed mix) create-run. Every `--interval` seconds the server's VmRSS (and RssAnon, RssFile), the
database's size and the requests answered so far are read. The samples after the warm-up (`--warmup`
seconds; by default 10% of the run, at least 15 s) are reported in `--windows` windows (10): requests,
median and peak RSS, database size.

`--mix fixed` (the default) is a fixed working set: one run per client, made at its first request,
and every write overwrites what an earlier one wrote (metrics cycle through 50 (step, timestamp, value)
points, which the store keeps once; the same params; tags and the 10 artifact files overwritten in
place). After a cycle the database stops growing, so what RSS still does grows with the number of
requests, not with the data. Criterion (levelling off): in the last half of the windows the database
grows by at most 1 MiB (else the working set was not fixed and the verdict is FAIL), and the window
medians stay within `--level-tolerance` (5%; 10% for `--short`, a minute in which RSS still climbs) of
the lowest of them plus `--level-slack-mib` (2 MiB, allocator noise). The RSS slope over the last half is reported per 100,000 requests.

Criterion of the other mixes (`all`, `reads`, `writes`; the database grows in `all` and `writes`):
the measured samples are cut in thirds. The median RSS of the last third must stay under

    first-third median x (1 + tolerance) + slack + SQLite cache allowance

with `--tolerance` 10% and `--slack-mib` 4 MiB (allocator noise on a small heap). The SQLite cache
allowance is what SQLite's page caches may legitimately add: the write connection caches up to 64 MiB of
the database (`PRAGMA cache_size = -65536`), so it may grow by as much as the database grew between the
two thirds until it holds 64 MiB; the 8 read connections cache up to 2 MiB each (SQLite's default) and
open and fill on demand, so up to 16 MiB (never more than the database) is allowed for them at any time.
`--preload-mib` grows the database first (large log-batch requests), so that the writer's cache is full
and its allowance zero during the whole soak. `--mix reads` keeps the database the same size.
Every request must succeed too. The verdict, the numbers and the
RSS slope are printed (and written to `--out` as JSON, with every sample).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import faultkit  # noqa: E402
from faultkit import Api, cs  # noqa: E402

MIB = 1024 * 1024


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    duration = parser.add_mutually_exclusive_group()
    duration.add_argument("--minutes", type=float, default=10.0, help="length of the soak (10)")
    duration.add_argument("--seconds", type=float, help="length of the soak in seconds")
    duration.add_argument("--short", action="store_true", help="60 s, as CI runs it")
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads (8)")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between RSS samples")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up excluded from the criterion")
    parser.add_argument("--tolerance", type=float, default=0.10,
                        help="allowed growth of the last third's median over the first's (0.10)")
    parser.add_argument("--slack-mib", type=float, default=4.0, help="absolute slack in MiB (4)")
    parser.add_argument("--preload-mib", type=float, default=0.0,
                        help="grow the database to this size before the soak (0: none)")
    parser.add_argument("--mix", choices=("fixed", "all", "reads", "writes"), default="fixed",
                        help="fixed (default): one run per client, every write overwrites, so the "
                             "database stops growing; all: new runs and new rows all along; reads: "
                             "runs made once, then only reads and a tag overwritten in place; "
                             "writes: only create-run, log-metric, log-batch, set-tag and uploads")
    parser.add_argument("--windows", type=int, default=10,
                        help="windows the measured samples are reported in (10)")
    parser.add_argument("--level-tolerance", type=float,
                        help="fixed mix: spread of the last half's window medians allowed, as a "
                             "fraction of the lowest (0.05; 0.10 with --short, whose minute ends "
                             "before RSS has levelled off)")
    parser.add_argument("--level-slack-mib", type=float, default=2.0,
                        help="fixed mix: absolute slack on that spread in MiB (2)")
    parser.add_argument("--out", help="write the samples and the verdict as JSON here")
    args = parser.parse_args(argv)
    if args.short:
        args.seconds = 60.0
    if args.level_tolerance is None:
        args.level_tolerance = 0.10 if args.short else 0.05
    if args.seconds is None:
        args.seconds = args.minutes * 60
    if args.warmup is None:
        args.warmup = max(15.0, args.seconds * 0.10)
    if args.warmup >= args.seconds * 0.8:
        parser.error("the warm-up must leave at least 20% of the run to measure")
    if args.windows < 4:
        parser.error("at least 4 windows: the criterion compares the last half's")
    return args


class Load:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.errors: list[str] = []

    def count(self, response, what: str):
        with self.lock:
            self.requests += 1
            if response is None:
                self.errors.append(f"{what}: no answer")
            elif response.status_code != 200:
                self.errors.append(f"{what}: {faultkit.describe(response)}")


READ_CHOICES = (2, 3, 4, 5, 7)
WRITE_CHOICES = (0, 1, 2, 6)
# The fixed working set: the (step, timestamp, value) points a metric cycles through, at a fixed time.
FIXED_POINTS, FIXED_T0 = 50, 1_700_000_000_000


def _client(api: Api, base_url: str, experiment_id: str, index: int, load: Load,
            stop: threading.Event, mix: str = "all"):
    import requests

    rng = random.Random(index)
    payload = os.urandom(16 * 1024)
    run_id, artifact_root, step = None, None, 0

    def send(what, call):
        try:
            response = call()
        except requests.RequestException:
            response = None
        load.count(response, what)
        return response if response is not None and response.status_code == 200 else None

    def point():
        """The metric point of this step: new ones in the growing mixes, a cycle in the fixed one."""
        if mix == "fixed":
            return step % FIXED_POINTS, FIXED_T0 + step % FIXED_POINTS, (step % FIXED_POINTS) / 8
        return step, faultkit.now_ms(), rng.random()

    while not stop.is_set():
        if run_id is None or (step % 50 == 0 and mix not in ("reads", "fixed")):
            answer = send("create-run", lambda: api.post("runs/create", {
                "experiment_id": experiment_id, "start_time": faultkit.now_ms()}))
            if answer is None:
                time.sleep(0.5)
                continue
            info = answer.json()["run"]["info"]
            run_id = info["run_id"]
            artifact_root = info["artifact_uri"].removeprefix("mlflow-artifacts:/").lstrip("/")
        step += 1
        choice = step % 8
        if mix == "reads":
            choice = READ_CHOICES[step % len(READ_CHOICES)]
        elif mix == "writes":
            choice = WRITE_CHOICES[step % len(WRITE_CHOICES)]
        at_step, timestamp, value = point()
        if choice == 0:
            send("log-metric", lambda: api.post("runs/log-metric", {
                "run_id": run_id, "key": "loss", "value": value,
                "timestamp": timestamp, "step": at_step}))
        elif choice == 1:
            param_prefix = "p" if mix == "fixed" else f"p{step}."
            send("log-batch", lambda: api.post("runs/log-batch", {
                "run_id": run_id,
                "metrics": [{"key": f"m{number}", "value": value + number, "timestamp": timestamp,
                             "step": at_step} for number in range(20)],
                "params": [{"key": f"{param_prefix}{number}", "value": str(number)}
                           for number in range(5)],
                "tags": [{"key": f"t{number}", "value": str(step)} for number in range(5)]}))
        elif choice == 2:
            send("set-tag", lambda: api.post("runs/set-tag", {
                "run_id": run_id, "key": "phase", "value": str(step)}))
        elif choice == 3:
            send("get-run", lambda: api.get("runs/get", {"run_id": run_id}))
        elif choice == 4:
            send("search-runs", lambda: api.post("runs/search", {
                "experiment_ids": [experiment_id], "filter": "metrics.loss < 0.5",
                "max_results": 10}))
        elif choice == 5:
            send("get-history", lambda: api.get("metrics/get-history", {
                "run_id": run_id, "metric_key": "m1"}))
        elif choice == 6:
            url = f"{base_url}/api/2.0/mlflow-artifacts/artifacts/{artifact_root}/f{step % 10}.bin"
            send("upload", lambda: api.session.put(url, data=payload, timeout=60))
        else:
            url = f"{base_url}/api/2.0/mlflow-artifacts/artifacts/{artifact_root}/f{(step - 1) % 10}.bin"
            # The file may not exist yet on a new run: 404 is an answer too.
            try:
                response = api.session.get(url, timeout=60)
                with load.lock:
                    load.requests += 1
                    if response.status_code not in (200, 404):
                        load.errors.append(f"download: {faultkit.describe(response)}")
            except requests.RequestException:
                load.count(None, "download")


def database_bytes(workdir: Path) -> int:
    return sum(path.stat().st_size for path in workdir.glob("mlflow.db*") if path.is_file())


def preload(api: Api, experiment_id: str, workdir: Path, target_bytes: int, threads: int = 4) -> int:
    """Large log-batch requests until the database files hold `target_bytes`; returns the batches."""
    run_ids = [api.create_run(experiment_id) for _ in range(threads)]
    sent = [0] * threads
    failures: list[str] = []

    def fill(index: int):
        while database_bytes(workdir) < target_bytes and not failures:
            now = faultkit.now_ms()
            response = api.post("runs/log-batch", {"run_id": run_ids[index], "metrics": [
                {"key": f"preload.m{number}", "value": number * 0.25, "timestamp": now,
                 "step": sent[index]} for number in range(1000)]})
            if response.status_code != 200:
                failures.append(faultkit.describe(response))
            sent[index] += 1

    workers = [threading.Thread(target=fill, args=(index,), daemon=True) for index in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if failures:
        raise RuntimeError(f"preload failed: {failures[0]}")
    return sum(sent)


WRITER_CACHE = 64 * MIB
READERS, READER_CACHE = 8, 2 * MIB


def cache_allowance(database_first: float, database_last: float) -> float:
    """How much SQLite's page caches may legitimately grow between two database sizes: the writer's
    cache by as much as the database grew (up to its 64 MiB), and the read connections' caches, which
    open on demand and fill as they read, by all they can hold (never more than the database)."""
    writer = min(database_last, WRITER_CACHE) - min(database_first, WRITER_CACHE)
    return max(0.0, writer) + min(database_last, READERS * READER_CACHE)


def fitted_slope(xs: list[float], ys: list[float]) -> float:
    """The least-squares slope of ys over xs."""
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    denominator = sum((x - mean_x) ** 2 for x in xs) or 1.0
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / denominator


def windows(samples: list[dict], warmup: float, count: int) -> list[dict]:
    """The measured samples in `count` windows of equal length: requests answered in each, the median
    and peak RSS, the median anonymous RSS and the database size at its start and end (MiB)."""
    measured = [sample for sample in samples if sample["seconds"] >= warmup]
    size = len(measured) / count
    result, previous = [], None
    for index in range(count):
        part = measured[round(index * size):round((index + 1) * size)]
        if not part:
            continue
        before = previous if previous is not None else part[0]
        result.append({
            "from_s": round(part[0]["seconds"]), "to_s": round(part[-1]["seconds"]),
            "requests": part[-1]["requests"] - before["requests"],
            "requests_total": part[-1]["requests"],
            "rss_median_mib": round(statistics.median(s["rss"] for s in part) / MIB, 2),
            "rss_peak_mib": round(max(s["rss"] for s in part) / MIB, 2),
            "anon_median_mib": round(statistics.median(s["anon"] for s in part) / MIB, 2),
            "database_start_mib": round(before["database"] / MIB, 2),
            "database_end_mib": round(part[-1]["database"] / MIB, 2),
        })
        previous = part[-1]
    return result


# The fixed working set's database may grow this much over the last half (WAL file size jitter).
FIXED_DATABASE_GROWTH = 1 * MIB


def judge_levelling(samples: list[dict], spans: list[dict], warmup: float, tolerance: float,
                    slack_mib: float) -> dict:
    """Fixed mix: the last half of the windows has a database that no longer grows and RSS medians
    within `tolerance` of the lowest plus `slack_mib`."""
    if len(spans) < 4:
        return {"ok": False, "reason": f"only {len(spans)} windows after the warm-up"}
    half = spans[len(spans) // 2:]
    medians = [span["rss_median_mib"] for span in half]
    low, high = min(medians), max(medians)
    allowed = low * tolerance + slack_mib
    database_growth = half[-1]["database_end_mib"] - half[0]["database_start_mib"]
    begins = half[0]["from_s"]
    tail = [sample for sample in samples if sample["seconds"] >= begins]
    per_request = fitted_slope([sample["requests"] for sample in tail],
                               [sample["rss"] for sample in tail])
    fixed = database_growth * MIB <= FIXED_DATABASE_GROWTH
    measured = [sample for sample in samples if sample["seconds"] >= warmup]
    verdict = {
        "ok": fixed and high - low <= allowed,
        "criterion": "levelling: last-half window medians within "
                     f"{tolerance:.0%} of the lowest + {slack_mib:g} MiB, database not growing",
        "last_half_from_s": begins,
        "last_half_rss_median_low_high_mib": [low, high],
        "last_half_spread_mib": round(high - low, 2),
        "allowed_spread_mib": round(allowed, 2),
        "last_half_database_growth_mib": round(database_growth, 2),
        "last_half_slope_mib_per_100k_requests": round(per_request * 100_000 / MIB, 3),
        "first_window_to_last_rss_mib": [spans[0]["rss_median_mib"], spans[-1]["rss_median_mib"]],
        "peak_mib": round(max(sample["rss"] for sample in measured) / MIB, 2),
        "samples_measured": len(measured),
    }
    if not fixed:
        verdict["reason"] = (f"the database grew {database_growth:.2f} MiB over the last half: the "
                             "working set is not fixed, so the criterion does not apply")
    return verdict


def window_table(spans: list[dict]) -> str:
    """The windows as a Markdown table (docs/reliability.md keeps one)."""
    lines = ["| window (s) | requests | RSS median (MiB) | RSS peak (MiB) | anon median (MiB) | "
             "database (MiB) |", "| --- | --- | --- | --- | --- | --- |"]
    for span in spans:
        lines.append(f"| {span['from_s']}–{span['to_s']} | {span['requests']:,} | "
                     f"{span['rss_median_mib']:.1f} | {span['rss_peak_mib']:.1f} | "
                     f"{span['anon_median_mib']:.1f} | {span['database_end_mib']:.1f} |")
    return "\n".join(lines)


def judge(samples: list[dict], warmup: float, tolerance: float, slack_mib: float) -> dict:
    measured = [sample for sample in samples if sample["seconds"] >= warmup]
    if len(measured) < 6:
        return {"ok": False, "reason": f"only {len(measured)} samples after the warm-up"}
    third = len(measured) // 3
    first, last = measured[:third], measured[-third:]

    def median(part, field):
        return statistics.median(sample[field] for sample in part)

    first_rss, last_rss = median(first, "rss"), median(last, "rss")
    allowance = cache_allowance(median(first, "database"), median(last, "database"))
    limit = first_rss * (1 + tolerance) + slack_mib * MIB + allowance
    values = [sample["rss"] for sample in measured]
    slope = fitted_slope([sample["seconds"] for sample in measured], values)
    return {
        "ok": last_rss <= limit,
        "first_third_median_mib": round(first_rss / MIB, 2),
        "last_third_median_mib": round(last_rss / MIB, 2),
        "sqlite_cache_allowance_mib": round(allowance / MIB, 2),
        "limit_mib": round(limit / MIB, 2),
        "growth_percent": round((last_rss / first_rss - 1) * 100, 2),
        "anon_first_last_mib": [round(median(first, "anon") / MIB, 2),
                                round(median(last, "anon") / MIB, 2)],
        "database_first_last_mib": [round(median(first, "database") / MIB, 1),
                                    round(median(last, "database") / MIB, 1)],
        "slope_mib_per_minute": round(slope * 60 / MIB, 3),
        "peak_mib": round(max(values) / MIB, 2),
        "samples_measured": len(measured),
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    problem = cs.binary_problem("ferroflow")
    if problem:
        print(f"soak: {problem}", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="ff-soak-"))
    server = cs.Server("ferroflow", workdir, cs.Database("sqlite", workdir))
    # One line per request would grow the log by gigabytes over a long soak.
    os.environ.setdefault("FERROFLOW_LOG", "warn")
    stop = threading.Event()
    load = Load()
    samples: list[dict] = []
    try:
        server.start()
        pid = server.proc.pid
        api = Api(server.url, timeout=60)
        experiment_id = api.create_experiment("soak")
        if args.preload_mib > 0:
            preload_began = time.monotonic()
            batches = preload(api, experiment_id, workdir, int(args.preload_mib * MIB))
            print(f"soak: preloaded {batches} batches of 1000 metrics "
                  f"({database_bytes(workdir) / MIB:.0f} MiB) in "
                  f"{time.monotonic() - preload_began:.0f}s; rss "
                  f"{faultkit.rss_bytes(pid) / MIB:.1f} MiB", flush=True)
        threads = [threading.Thread(target=_client, daemon=True,
                                    args=(api, server.url, experiment_id, index, load, stop,
                                          args.mix))
                   for index in range(args.clients)]
        began = time.monotonic()
        for thread in threads:
            thread.start()
        print(f"soak: {args.seconds:.0f}s, {args.clients} clients, warm-up {args.warmup:.0f}s, "
              f"ferroflow pid {pid} ({cs.ferroflow_bin()})", flush=True)
        next_report = began
        while (elapsed := time.monotonic() - began) < args.seconds:
            if server.proc.poll() is not None:
                print("soak: ferroflow exited", file=sys.stderr)
                break
            memory = faultkit.memory_status(pid)
            samples.append({"seconds": round(elapsed, 2), "rss": memory["VmRSS"],
                            "anon": memory.get("RssAnon", 0), "file": memory.get("RssFile", 0),
                            "database": database_bytes(workdir), "requests": load.requests})
            if time.monotonic() >= next_report:
                print(f"  t={elapsed:6.0f}s rss={memory['VmRSS'] / MIB:7.1f} MiB "
                      f"(anon {memory.get('RssAnon', 0) / MIB:.1f}) "
                      f"db={samples[-1]['database'] / MIB:.1f} MiB "
                      f"requests={load.requests} errors={len(load.errors)}", flush=True)
                next_report += max(10.0, args.seconds / 20)
            time.sleep(args.interval)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        elapsed = time.monotonic() - began
        alive = server.proc is not None and server.proc.poll() is None
    finally:
        stop.set()
        server.stop()
    spans = windows(samples, args.warmup, args.windows)
    if args.mix == "fixed":
        verdict = judge_levelling(samples, spans, args.warmup, args.level_tolerance,
                                  args.level_slack_mib)
    else:
        verdict = judge(samples, args.warmup, args.tolerance, args.slack_mib)
    verdict.update({
        "mix": args.mix,
        "seconds": round(elapsed, 1), "clients": args.clients, "requests": load.requests,
        "requests_per_second": round(load.requests / elapsed, 1), "errors": len(load.errors),
        "first_errors": load.errors[:5], "server_alive_at_end": alive,
    })
    ok = verdict["ok"] and not load.errors and alive
    verdict["ok"] = ok
    print("soak: " + json.dumps(verdict), flush=True)
    print(f"soak: RSS over time, {len(spans)} windows after the warm-up:\n{window_table(spans)}",
          flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps({"verdict": verdict, "windows": spans,
                                              "samples": samples}, indent=1))
    if args.mix == "fixed":
        summary = (f"last-half RSS medians {verdict.get('last_half_rss_median_low_high_mib')} MiB, "
                   f"spread {verdict.get('last_half_spread_mib')} vs allowed "
                   f"{verdict.get('allowed_spread_mib')} MiB, database "
                   f"+{verdict.get('last_half_database_growth_mib')} MiB")
    else:
        summary = (f"last-third median RSS {verdict.get('last_third_median_mib')} MiB vs limit "
                   f"{verdict.get('limit_mib')} MiB")
    print(f"soak: {'PASS' if ok else 'FAIL'} ({summary}; {len(load.errors)} failed requests)",
          flush=True)
    if ok:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"soak: server log and database kept in {workdir}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
