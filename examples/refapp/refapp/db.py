"""The application's own table, on SQLite (sqlite3) or PostgreSQL (psycopg 3).

The database is named by ``REFAPP_DATABASE_URL`` (else ``DATABASE_URL``, the variable oauthtest
reads too): ``sqlite:///abs/path.db`` (also ``sqlite://path``, ``sqlite:path``) or
``postgres://…`` / ``postgresql://…``.
"""

import os
import sqlite3
from contextlib import contextmanager
from datetime import datetime, timezone

STATUS_ACTIVE = "active"
STATUS_NEEDS_RECONNECT = "needs_reconnect"

SCHEMA = """
CREATE TABLE IF NOT EXISTS credentials (
    id {id},
    user_id INTEGER NOT NULL,
    type VARCHAR(64) NOT NULL,
    name VARCHAR(255) NOT NULL,
    encrypted_data TEXT,
    status VARCHAR(32) NOT NULL DEFAULT 'active',
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
)
"""
ID_COLUMN = {"sqlite": "INTEGER PRIMARY KEY AUTOINCREMENT", "postgres": "SERIAL PRIMARY KEY"}


class ConfigError(Exception):
    """Bad configuration: a missing variable, an unknown URL scheme."""


def database_url():
    url = os.environ.get("REFAPP_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if not url:
        raise ConfigError("REFAPP_DATABASE_URL (or DATABASE_URL) is not set")
    return url


def now_sql():
    """UTC now as the table keeps it: ``2026-12-01 07:03:06.123456``."""
    return datetime.now(timezone.utc).replace(tzinfo=None).isoformat(sep=" ")


class Row:
    """One credential row as read: the sealed payload is opened by the caller."""

    def __init__(self, id, user_id, type, name, encrypted_data, status, updated_at):
        self.id = id
        self.user_id = user_id
        self.type = type
        self.name = name
        self.encrypted_data = encrypted_data
        self.status = status
        self.updated_at = updated_at

    def __repr__(self):  # never the sealed data
        return f"Row(id={self.id!r}, type={self.type!r}, status={self.status!r})"


COLUMNS = "id, user_id, type, name, encrypted_data, status, updated_at"


class Database:
    """A connection to the application's database; one per job (and per thread)."""

    def __init__(self, url=None):
        url = url or database_url()
        if url.startswith(("postgres://", "postgresql://")):
            import psycopg

            self.kind = "postgres"
            self.conn = psycopg.connect(url)
            self.mark = "%s"
        elif url.startswith("sqlite:"):
            path = url[len("sqlite:"):]
            if path.startswith("//"):
                path = path[2:]
            path = path.split("?", 1)[0]
            self.kind = "sqlite"
            # isolation_level=None: transactions are begun explicitly (BEGIN / BEGIN IMMEDIATE).
            self.conn = sqlite3.connect(path, timeout=30, isolation_level=None)
            self.mark = "?"
        else:
            raise ConfigError(
                "REFAPP_DATABASE_URL: expected sqlite:///PATH or postgres://…, got another scheme"
            )

    def close(self):
        self.conn.close()

    def _sql(self, text):
        return text.replace("?", self.mark)

    def execute(self, text, params=()):
        cur = self.conn.cursor()
        cur.execute(self._sql(text), params)
        return cur

    def commit(self):
        if self.kind == "postgres":
            self.conn.commit()

    def init_schema(self):
        self.execute(SCHEMA.format(id=ID_COLUMN[self.kind]))
        self.commit()

    def insert(self, user_id, type, name, sealed):
        at = now_sql()
        params = (user_id, type, name, sealed, STATUS_ACTIVE, at, at)
        insert = (
            "INSERT INTO credentials (user_id, type, name, encrypted_data, status, created_at,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
        )
        if self.kind == "postgres":
            new_id = self.execute(insert + " RETURNING id", params).fetchone()[0]
        else:
            new_id = self.execute(insert, params).lastrowid
        self.commit()
        return new_id

    def load(self, credential_id, for_update=False):
        """The row, or ``None``. ``for_update`` (inside ``transaction(lock=True)``) takes PostgreSQL's row lock."""
        lock = " FOR UPDATE" if for_update and self.kind == "postgres" else ""
        found = self.execute(
            f"SELECT {COLUMNS} FROM credentials WHERE id = ?{lock}", (int(credential_id),)
        ).fetchone()
        if self.kind == "postgres" and not for_update:
            self.commit()  # end the read's implicit transaction
        return Row(*found) if found else None

    def save(self, credential_id, sealed=None, status=None):
        """Writes the sealed payload and/or the status, and ``updated_at``."""
        sets, params = ["updated_at = ?"], [now_sql()]
        if sealed is not None:
            sets.append("encrypted_data = ?")
            params.append(sealed)
        if status is not None:
            sets.append("status = ?")
            params.append(status)
        params.append(int(credential_id))
        self.execute(f"UPDATE credentials SET {', '.join(sets)} WHERE id = ?", params)

    @contextmanager
    def transaction(self, lock):
        """One transaction. With ``lock`` it holds the write lock: ``BEGIN IMMEDIATE`` on SQLite
        (the whole database), on PostgreSQL the row lock that ``load(for_update=True)`` takes."""
        if self.kind == "sqlite":
            self.execute("BEGIN IMMEDIATE" if lock else "BEGIN")
        else:
            self.conn.commit()  # whatever was read before: a fresh transaction
        try:
            yield self
        except BaseException:
            if self.kind == "sqlite":
                self.execute("ROLLBACK")
            else:
                self.conn.rollback()
            raise
        if self.kind == "sqlite":
            self.execute("COMMIT")
        else:
            self.conn.commit()
