"""Fills a ferroflow/MLflow SQLite database (already created by `ferroflow server`) with the UI benchmark's
data, straight through SQL for speed: 10,000 runs with params, metrics and tags in one experiment, and one
run with a 1,000,000-point metric in another. Rows follow MLflow 3.17's schema, so `mlflow server` serves the
same file.

    python fill.py DB RUNS_EXPERIMENT_ID METRIC_RUN_ID RUN_COUNT POINT_COUNT
"""

import math
import sqlite3
import sys
import time
import uuid


def main() -> None:
    db, runs_experiment, metric_run, run_count, point_count = sys.argv[1:6]
    run_count, point_count = int(run_count), int(point_count)
    connection = sqlite3.connect(db)
    now = int(time.time() * 1000)
    runs, params, metrics, latest, tags = [], [], [], [], []
    for index in range(run_count):
        run_id = uuid.uuid4().hex
        name = f"run-{index:05d}"
        start = now - (run_count - index) * 1000
        runs.append((run_id, name, "LOCAL", "bench.py", "", "bench", "FINISHED", start, start + 500, "",
                     "active", f"mlflow-artifacts:/{runs_experiment}/{run_id}/artifacts", int(runs_experiment)))
        for key, value in (("lr", str([0.1, 0.01, 0.001][index % 3])), ("batch_size", str(32 << (index % 4))),
                           ("model", ["mlp", "cnn", "rnn"][index % 3])):
            params.append((key, value, run_id))
        for key, value in (("loss", 1.0 / (index + 1)), ("accuracy", (index % 1000) / 1000.0),
                           ("f1", math.sin(index) ** 2)):
            metrics.append((key, value, start, run_id, 0, 0))
            latest.append((key, value, start, 0, 0, run_id))
        tags.append(("mlflow.runName", name, run_id))
        tags.append(("mlflow.user", "bench", run_id))
    with connection:
        connection.executemany(
            "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, "
            "start_time, end_time, source_version, lifecycle_stage, artifact_uri, experiment_id) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", runs)
        connection.executemany('INSERT INTO params ("key", value, run_uuid) VALUES (?,?,?)', params)
        connection.executemany(
            'INSERT INTO metrics ("key", value, timestamp, run_uuid, step, is_nan) VALUES (?,?,?,?,?,?)', metrics)
        connection.executemany(
            'INSERT INTO latest_metrics ("key", value, timestamp, step, is_nan, run_uuid) VALUES (?,?,?,?,?,?)',
            latest)
        connection.executemany('INSERT INTO tags ("key", value, run_uuid) VALUES (?,?,?)', tags)

    start = now - point_count * 10
    last = None

    def points():
        nonlocal last
        for step in range(point_count):
            value = 2.0 * math.exp(-step / (point_count / 5)) + 0.05 * math.sin(step / 50.0)
            last = (value, start + step * 10, step)
            yield ("loss", value, start + step * 10, metric_run, step, 0)

    with connection:
        connection.executemany(
            'INSERT INTO metrics ("key", value, timestamp, run_uuid, step, is_nan) VALUES (?,?,?,?,?,?)', points())
        value, timestamp, step = last
        connection.execute(
            'INSERT OR REPLACE INTO latest_metrics ("key", value, timestamp, step, is_nan, run_uuid) '
            "VALUES ('loss', ?, ?, ?, 0, ?)", (value, timestamp, step, metric_run))
    connection.close()


if __name__ == "__main__":
    main()
