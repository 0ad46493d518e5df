#!/usr/bin/env python3
"""Regenerates auth_postgres.sql and auth_mysql.sql from the basic-auth schema that the real MLflow creates.

    crates/ferroflow-store/schema/regenerate_auth.py [--python PATH] [--check]

Like regenerate.py (whose dump cleaning it reuses), for each server it creates a fresh database, runs
MLflow 3.17.2's own auth migrations on it (`python -m mlflow.server.auth db upgrade --url ...`, alembic head
f1a2b3c4d5e6 in `alembic_version_auth`), dumps the schema, cleans the dump and drops the database. With
--check nothing is written: it exits non-zero if a file differs. auth_sqlite.sql was dumped by hand with
sqlite3 .schema from a database `mlflow server --app-name basic-auth` created.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from pathlib import Path

from regenerate import MY, PG, clean_mysql_dump, clean_pg_dump, run, write_or_check

HERE = Path(__file__).resolve().parent
REVISION = "f1a2b3c4d5e6"


def upgrade(python: str, url: str) -> None:
    run([python, "-m", "mlflow.server.auth", "db", "upgrade", "--url", url])


# MLflow 3.17.2's first auth migration names the foreign key of both experiment_permissions and
# registered_model_permissions `fk_user_id`. MySQL and MariaDB want foreign key names unique per database,
# so on them MLflow's own migration fails (errno 121, "Duplicate key on write or update") and
# `mlflow server --app-name basic-auth` cannot start on a MySQL auth database. The MySQL schema is made by
# the same migrations (alembic opens its own engine, hence the listener on every Engine) with that one name
# made unique for registered_model_permissions.
MYSQL_UPGRADE = """
import sys, sqlalchemy
from mlflow.server.auth.db import utils
engine = sqlalchemy.create_engine(sys.argv[1])

@sqlalchemy.event.listens_for(sqlalchemy.engine.Engine, "before_cursor_execute", retval=True)
def unique_foreign_key_name(conn, cursor, statement, parameters, context, executemany):
    if statement.lstrip().startswith("CREATE TABLE registered_model_permissions"):
        statement = statement.replace("CONSTRAINT fk_user_id ", "CONSTRAINT fk_registered_model_perm_user_id ")
    return statement, parameters

utils.migrate(engine, "head")
engine.dispose()
"""


def pg_reference(python: str) -> str:
    database = f"ff_auth_ref_{uuid.uuid4().hex[:8]}"
    connection = ["-h", PG["host"], "-p", PG["port"], "-U", PG["user"]]
    run(["createdb", *connection, database])
    try:
        upgrade(python, f"postgresql+psycopg2://{PG['user']}@{PG['host']}:{PG['port']}/{database}")
        return run(["pg_dump", *connection, "--schema-only", "--no-owner", "--no-privileges",
                    database])
    finally:
        run(["dropdb", *connection, "--if-exists", database])


def mysql_reference(python: str) -> str:
    database = f"ff_auth_ref_{uuid.uuid4().hex[:8]}"
    connection = ["-h", MY["host"], "-P", MY["port"], "-u", MY["user"]]
    run(["mariadb", *connection, "-e", f"CREATE DATABASE `{database}`"])
    try:
        url = f"mysql+pymysql://{MY['user']}@{MY['host']}:{MY['port']}/{database}"
        run([python, "-c", MYSQL_UPGRADE, url])
        return run(["mariadb-dump", *connection, "--no-data", "--skip-comments", database])
    finally:
        run(["mariadb", *connection, "-e", f"DROP DATABASE IF EXISTS `{database}`"])


def header(dialect: str, how: str) -> str:
    return (
        f"-- MLflow 3.17.2's basic-auth database on {dialect} (alembic revision {REVISION} in "
        "alembic_version_auth).\n--\n"
        "-- Produced by schema/regenerate_auth.py: MLflow's own auth migrations on a fresh database, "
        f"{how}.\n-- `SqlAuthStore::open` applies it to an empty auth database, then stamps "
        "alembic_version_auth, as MLflow does.\n\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="a python with mlflow 3.17.2")
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    outputs = {
        HERE / "auth_postgres.sql": header(
            "PostgreSQL", "dumped and cleaned as regenerate.py cleans postgres.sql"
        ) + clean_pg_dump(pg_reference(args.python)),
        HERE / "auth_mysql.sql": header(
            "MySQL and MariaDB",
            "dumped and cleaned as regenerate.py cleans mysql.sql (dependency order, one statement "
            "per `;` line end).\n-- MLflow's own migration cannot create it: its first revision names two "
            "foreign keys fk_user_id, which\n-- MySQL refuses; registered_model_permissions' is named "
            "fk_registered_model_perm_user_id here",
        ) + clean_mysql_dump(mysql_reference(args.python)),
    }
    return write_or_check(outputs, args.check)


if __name__ == "__main__":
    sys.exit(main())
