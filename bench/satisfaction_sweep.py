#!/usr/bin/env python3
"""How long the satisfaction survey sweep's query takes on SQLite with many solved cases.

Usage: scripts/bench-satisfaction.sh  (builds, migrates a fresh database, runs this).
Seeds N answered, solved email cases spread over the survey window (delay 1 day, window 7
days), all already surveyed (the steady state: the query must find nothing, fast), then times
the query the sender runs (crates/store/src/queries.rs `satisfaction::due`, same SQL shape):
a round's slice (the last 10 minutes), and the hourly full sweep (the whole window), and shows
SQLite's plan for each.
"""
import datetime
import sqlite3
import sys
import time
import uuid

path, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
db = sqlite3.connect(path)
c = db.cursor()
now = datetime.datetime(2026, 12, 7, 12, 0, 0)
fmt = lambda d: d.strftime("%Y-%m-%d %H:%M:%S")
cust = str(uuid.uuid4())
c.execute("INSERT INTO customers (id, name, tier, value, notes, created_at, updated_at, version) "
          "VALUES (?, 'Bench', 'standard', 0, '', ?, ?, 1)", (cust, fmt(now), fmt(now)))
cases, surveys = [], []
for i in range(n):
    cid = str(uuid.uuid4())
    ts = fmt(now - datetime.timedelta(seconds=86_400 + i * 604_800 // n))
    cases.append((cid, 1_000_000 + i, "s", "solved", "normal", "email", cust, ts, ts, ts, ts, ts))
    surveys.append((cid, uuid.uuid4().hex + uuid.uuid4().hex, "email", "sent", ts, ts))
c.executemany("INSERT INTO cases (id, number, subject, status, priority, channel, customer_id, created_at, "
              "updated_at, last_message_at, first_response_at, solved_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", cases)
c.executemany("INSERT INTO satisfaction_surveys (case_id, token_hash, channel, status, sent_at, expires_at) "
              "VALUES (?,?,?,?,?,?)", surveys)
db.commit()
query = ("SELECT id, solved_at, status FROM cases WHERE solved_at >= ? AND (solved_at > ? OR (solved_at = ? AND id > ?)) "
         "AND solved_at <= ? AND channel IN ('email', 'web', 'chat') AND first_response_at IS NOT NULL "
         "AND NOT EXISTS (SELECT 1 FROM satisfaction_surveys WHERE satisfaction_surveys.case_id = cases.id) "
         "ORDER BY solved_at, id LIMIT 200")
until = now - datetime.timedelta(seconds=86_400)
for name, after in [("a round (last 10 minutes)", until - datetime.timedelta(minutes=10)),
                    ("full sweep (7-day window)", until - datetime.timedelta(seconds=604_800))]:
    args = (fmt(after), fmt(after), fmt(after), "", fmt(until))
    plan = [p[3] for p in c.execute("EXPLAIN QUERY PLAN " + query, args).fetchall()]
    times = []
    for _ in range(5):
        t = time.perf_counter()
        rows = c.execute(query, args).fetchall()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    print(f"{name}: {len(rows)} rows, median {times[2]:.2f} ms over 5 runs; plan: {plan[0]}")
