#!/usr/bin/env python3
"""Regenerates postgres.sql and mysql.sql from the schema that the real MLflow creates.

    crates/ferroflow-store/schema/regenerate.py [--mlflow PATH] [--check]

For each server it creates a fresh database, runs `mlflow db upgrade` of mlflow 3.17.2 on it (alembic
head dc11669786a5), dumps the schema (`pg_dump --schema-only`, `mariadb-dump --no-data`), removes what
belongs to the dump rather than to the schema (comments, session settings, owners, the trigger's
definer, table options that are the database's defaults), writes the cleaned DDL next to this script and
drops the database. With --check nothing is written: it exits non-zero if a file differs.

The servers are the ones of a development machine: PostgreSQL at 127.0.0.1:5432 (trust auth, user
postgres) and MariaDB at 127.0.0.1:3306 (root, empty password). The mlflow environment needs
psycopg2-binary and pymysql (tests/compat/requirements.txt pins them).

The cleaned files keep the dump's statement order for PostgreSQL (tables, sequences, then keys, indexes,
the trigger and the foreign keys). For MySQL the tables are put in an order where every foreign key
references a table created before it, each statement ends with `;` at the end of a line and the trigger
ends with a line `END;`: `mysql::schema_statements` splits the file on that convention. (MariaDB does not
keep the order of a table's secondary keys stable across `mlflow db upgrade` runs, so comparisons of dumps
sort them: tests/compat/test_interop.py.)
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
REVISION = "dc11669786a5"
PG = {"host": "127.0.0.1", "port": "5432", "user": "postgres"}
MY = {"host": "127.0.0.1", "port": "3306", "user": "root"}


def run(command: list[str], **kwargs) -> str:
    result = subprocess.run(command, check=True, capture_output=True, text=True, **kwargs)
    return result.stdout


# ----------------------------------------------------------------------------------- PostgreSQL


def clean_pg_dump(dump: str) -> str:
    """pg_dump --schema-only output without comments, session settings and schema qualification."""
    statements = []
    for line in dump.splitlines():
        if line.startswith("--") or line.startswith("\\restrict") or line.startswith("\\unrestrict"):
            continue
        if re.match(r"^SET \w+ = .*;$", line) or line.startswith("SELECT pg_catalog.set_config"):
            continue
        statements.append(line)
    text = "\n".join(statements)
    # Objects go to the connection's current schema, as SQLAlchemy creates them.
    text = re.sub(r"\bpublic\.", "", text)
    # A check is written as MLflow wrote it (`column IN (...)`): PostgreSQL stores it as `= ANY (ARRAY[..])`,
    # and reading back the dump's spelling would store a different (equivalent) expression.
    text = re.sub(
        r"CHECK \(\(\((\w+)\)::text = ANY \(\(ARRAY\[(.*?)\]\)::text\[\]\)\)\)",
        lambda match: "CHECK ({} IN ({}))".format(
            match.group(1), match.group(2).replace("::character varying", "")
        ),
        text,
    )
    text = re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
    return text


def pg_reference(mlflow: str) -> str:
    database = f"ff_schema_ref_{uuid.uuid4().hex[:8]}"
    connection = ["-h", PG["host"], "-p", PG["port"], "-U", PG["user"]]
    run(["createdb", *connection, database])
    try:
        run([mlflow, "db", "upgrade",
             f"postgresql+psycopg2://{PG['user']}@{PG['host']}:{PG['port']}/{database}"])
        return run(["pg_dump", *connection, "--schema-only", "--no-owner", "--no-privileges",
                    database])
    finally:
        run(["dropdb", *connection, "--if-exists", database])


POSTGRES_HEADER = f"""\
-- The MLflow 3.17 tracking schema for PostgreSQL (alembic revision {REVISION}).
--
-- Produced by schema/regenerate.py: `mlflow db upgrade` of mlflow 3.17.2 on a fresh database, dumped with
-- `pg_dump --schema-only --no-owner --no-privileges`, without the dump's comments and session settings and
-- with objects in the connection's current schema instead of `public.`. `postgres::migrate` applies it in
-- one transaction on an empty database, then stamps `alembic_version` and adds the Default experiment, as
-- MLflow does.

"""

# ---------------------------------------------------------------------------------------- MySQL


def clean_mysql_dump(dump: str) -> str:
    """mariadb-dump --no-data output as plain DDL in dependency order, without the dump's settings."""
    tables: dict[str, str] = {}
    triggers: list[str] = []
    lines = dump.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("CREATE TABLE"):
            block = [line]
            while not lines[index].startswith(")"):
                index += 1
                block.append(lines[index])
            name = re.match(r"CREATE TABLE `(\w+)`", line).group(1)
            tables[name] = clean_mysql_table(block)
        elif "TRIGGER" in line and line.startswith("/*!50003 CREATE*/"):
            block = [re.sub(r"^/\*!50003 CREATE\*/ /\*!50017 DEFINER=\S+\*/ /\*!50003 TRIGGER",
                            "CREATE TRIGGER", line)]
            while True:
                index += 1
                if lines[index].startswith("*/;;"):
                    break
                block.append(lines[index])
            block[-1] = block[-1].rstrip()
            if block[-1] == "END":
                block[-1] = "END;"
            triggers.append("\n".join(block))
        index += 1
    ordered = dependency_order(tables)
    return "\n\n".join([tables[name] for name in ordered] + triggers) + "\n"


def clean_mysql_table(block: list[str]) -> str:
    text = "\n".join(block)
    # Table options are the database's defaults, as MLflow leaves them.
    text = re.sub(r"\n\) ENGINE=.*$", "\n);", text)
    # Display widths are deprecated on MySQL 8; `tinyint(1)` is how BOOLEAN reads back and stays.
    text = re.sub(r"\b(bigint|int|smallint)\(\d+\)", r"\1", text)
    # MariaDB spells JSON as LONGTEXT with a binary collation and a json_valid check.
    text = re.sub(
        r"longtext CHARACTER SET utf8mb4 COLLATE utf8mb4_bin (.*?)\s*CHECK \(json_valid\(`\w+`\)\)",
        lambda match: f"json {match.group(1)}".rstrip(),
        text,
    )
    # Checks that MLflow left unnamed: the server names them (CONSTRAINT_n on MariaDB, <table>_chk_n on
    # MySQL), so they stay unnamed.
    text = re.sub(r"CONSTRAINT `CONSTRAINT_\d+` CHECK", "CHECK", text)
    return text


def dependency_order(tables: dict[str, str]) -> list[str]:
    references = {
        name: sorted(set(re.findall(r"REFERENCES `(\w+)`", ddl)) - {name})
        for name, ddl in tables.items()
    }
    ordered: list[str] = []

    def visit(name: str, path: tuple[str, ...]):
        if name in ordered:
            return
        if name in path:
            raise SystemExit(f"foreign key cycle through {path}")
        for parent in references[name]:
            visit(parent, path + (name,))
        ordered.append(name)

    for name in sorted(tables):
        visit(name, ())
    return ordered


def mysql_reference(mlflow: str) -> str:
    database = f"ff_schema_ref_{uuid.uuid4().hex[:8]}"
    connection = ["-h", MY["host"], "-P", MY["port"], "-u", MY["user"]]
    run(["mariadb", *connection, "-e", f"CREATE DATABASE `{database}`"])
    try:
        run([mlflow, "db", "upgrade",
             f"mysql+pymysql://{MY['user']}@{MY['host']}:{MY['port']}/{database}"])
        return run(["mariadb-dump", *connection, "--no-data", "--skip-comments", database])
    finally:
        run(["mariadb", *connection, "-e", f"DROP DATABASE IF EXISTS `{database}`"])


MYSQL_HEADER = f"""\
-- The MLflow 3.17 tracking schema for MySQL and MariaDB (alembic revision {REVISION}).
--
-- Produced by schema/regenerate.py: `mlflow db upgrade` of mlflow 3.17.2 on a fresh MariaDB database,
-- dumped with `mariadb-dump --no-data`, without the dump's settings, the table options that are the
-- database's defaults (engine, character set, collation), the trigger's definer and the names the server
-- gave unnamed checks; JSON columns are written `json` as MLflow declares them. Tables are in dependency
-- order. MySQL DDL is not transactional: `mysql::migrate` runs one statement at a time on an empty
-- database, checks that every table is there, then stamps `alembic_version` and adds the Default
-- experiment, as MLflow does. Each statement ends with `;` at the end of a line, the trigger with `END;`.

"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_mlflow = os.environ.get("MLFLOW_BIN") or str(Path(sys.executable).parent / "mlflow")
    parser.add_argument("--mlflow", default=default_mlflow, help="the mlflow 3.17.2 CLI")
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    outputs = {
        HERE / "postgres.sql": POSTGRES_HEADER + clean_pg_dump(pg_reference(args.mlflow)),
        HERE / "mysql.sql": MYSQL_HEADER + clean_mysql_dump(mysql_reference(args.mlflow)),
    }
    return write_or_check(outputs, args.check)


def write_or_check(outputs: dict[Path, str], check: bool) -> int:
    """Writes each file, or with `check` reports those that differ (non-zero exit status)."""
    stale = []
    for path, text in outputs.items():
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.name)
        else:
            path.write_text(text)
            print(f"wrote {path} ({text.count(chr(10))} lines)")
    if stale:
        print(f"out of date: {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
