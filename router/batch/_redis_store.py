"""The batch job store on Redis, for a Redis ledger: jobs resumable from any machine that shares it.

The same reads and writes as the SQLite store (``_store.JobStore``). Rows are JSON values in one hash
per job (lines by number, groups by id); ``claim`` is an optimistic transaction (WATCH / MULTI), so a
line changes state only if no other process changed it since it was read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import redis

from router.batch._store import GroupRow, JobRow, LineRow, StoredFile

_PREFIX = "router:batch:"


def _line(raw: bytes | str) -> LineRow:
    data = json.loads(raw)
    data["candidates"] = tuple(data["candidates"])
    data["history"] = tuple(data["history"])
    return LineRow(**data)


def _dump(row: LineRow | GroupRow | JobRow) -> str:
    return json.dumps(asdict(row), separators=(",", ":"))


def _current(row: Mapping[str, Any], old: LineRow) -> bool:
    return (row["state"], row["group_id"], row["attempt"]) == (old.state, old.group_id, old.attempt)


class RedisJobStore:
    def __init__(self, url: str) -> None:
        self.path = url
        # redis-py's own annotations mix sync and async return types: read as Any, like the ledger does.
        self._r: Any = redis.Redis.from_url(url)

    def close(self) -> None:
        self._r.close()

    def _key(self, kind: str, ident: str) -> str:
        return f"{_PREFIX}{kind}:{ident}"

    # --- files ---------------------------------------------------------------------------------------

    def put_file(self, stored: StoredFile) -> None:
        meta = {"filename": stored.filename, "purpose": stored.purpose, "created_at": stored.created_at}
        self._r.hset(self._key("file", stored.id), mapping={"meta": json.dumps(meta), "data": stored.data})

    def file(self, file_id: str) -> StoredFile | None:
        found = self._r.hgetall(self._key("file", file_id))
        if not found:
            return None
        meta = json.loads(found[b"meta"])
        return StoredFile(file_id, meta["filename"], meta["purpose"], meta["created_at"], found[b"data"])

    # --- jobs ----------------------------------------------------------------------------------------

    def insert_job(self, job: JobRow, lines: Sequence[LineRow]) -> None:
        pipe = self._r.pipeline(transaction=True)
        pipe.set(self._key("job", job.id), _dump(job))
        pipe.zadd(f"{_PREFIX}jobs", {job.id: job.created_at})
        if lines:
            pipe.hset(self._key("lines", job.id), mapping={str(line.n): _dump(line) for line in lines})
        pipe.execute()

    def job(self, job_id: str) -> JobRow | None:
        raw = self._r.get(self._key("job", job_id))
        return None if raw is None else JobRow(**json.loads(raw))

    def jobs(self, limit: int = 20, after: str | None = None) -> list[JobRow]:
        start = 0
        if after is not None:
            rank = self._r.zrevrank(f"{_PREFIX}jobs", after)
            if rank is None:
                return []
            start = int(rank) + 1
        ids = self._r.zrevrange(f"{_PREFIX}jobs", start, start + limit - 1)
        jobs = [self.job(i.decode()) for i in ids]
        return [job for job in jobs if job is not None]

    def set_job(self, job_id: str, **fields: Any) -> None:
        key = self._key("job", job_id)
        with self._r.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    data = json.loads(pipe.get(key) or b"{}")
                    data.update(fields)
                    pipe.multi()
                    pipe.set(key, json.dumps(data))
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue

    # --- lines and groups ----------------------------------------------------------------------------

    def lines(self, job_id: str, *states: str) -> list[LineRow]:
        rows = [_line(raw) for raw in self._r.hvals(self._key("lines", job_id))]
        rows.sort(key=lambda row: row.n)
        return [row for row in rows if not states or row.state in states]

    def counts(self, job_id: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.lines(job_id):
            counts[row.state] = counts.get(row.state, 0) + 1
        return counts

    def save(self, lines: Sequence[LineRow], groups: Sequence[GroupRow] = ()) -> None:
        pipe = self._r.pipeline(transaction=True)
        for line in lines:
            pipe.hset(self._key("lines", line.job_id), str(line.n), _dump(line))
        for group in groups:
            pipe.hset(self._key("groups", group.job_id), group.id, _dump(group))
        pipe.execute()

    def claim(
        self, changes: Sequence[tuple[LineRow, LineRow]], groups: Sequence[GroupRow] = ()
    ) -> list[LineRow]:
        """As ``JobStore.claim``: only lines still as read are written; the groups with them."""
        job_ids = {old.job_id for old, _ in changes} | {g.job_id for g in groups}
        keys = [self._key("lines", j) for j in job_ids]
        with self._r.pipeline() as pipe:
            while True:
                try:
                    if keys:
                        pipe.watch(*keys)
                    claimed: list[LineRow] = []
                    for old, new in changes:
                        raw = pipe.hget(self._key("lines", old.job_id), str(old.n))
                        if raw is not None and _current(json.loads(raw), old):
                            claimed.append(new)
                    pipe.multi()
                    for line in claimed:
                        pipe.hset(self._key("lines", line.job_id), str(line.n), _dump(line))
                    if claimed or not changes:
                        for group in groups:
                            pipe.hset(self._key("groups", group.job_id), group.id, _dump(group))
                    pipe.execute()
                    return claimed
                except redis.WatchError:
                    continue

    def groups(self, job_id: str, *states: str) -> list[GroupRow]:
        rows = [GroupRow(**json.loads(raw)) for raw in self._r.hvals(self._key("groups", job_id))]
        rows.sort(key=lambda g: (g.created_at, g.id))
        return [g for g in rows if g.state in states]
