#!/usr/bin/env python3
"""End-to-end email ingest benchmark: a real Dovecot (scripts/mail/start-imap.sh) and the
release `caseflow serve` reading it over IMAP.

  backlog: N messages are APPENDed first, then the server starts; reports how long it takes
           until all N are committed (wall clock from start-up, and the rate between the first
           and the last commit).
  steady:  the server runs, messages are APPENDed at RATE per second for DURATION seconds;
           reports APPEND-to-commit latency p50/p99 (same machine, same clock).

Usage: bench/ingest.py BIN sqlite|postgres DB_URL MODE [--count N] [--rate R] [--duration S]
Prints one markdown table row. Messages are generated (mixed plain and multipart/alternative,
quoted history, one new customer and case each: the most expensive path).
"""
import argparse, datetime, imaplib, os, random, socket, subprocess, sys, tempfile, threading, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USER, PASSWORD = "support", "bench-pw"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def message(i, run):
    rnd = random.Random(i)
    words = "printer invoice login refund shipping broken account password order delivery".split()
    body = " ".join(rnd.choice(words) for _ in range(rnd.randint(40, 250)))
    quoted = "\r\n".join("> " + " ".join(rnd.choice(words) for _ in range(12)) for _ in range(rnd.randint(0, 20)))
    mid = f"bench-{run}-{i}@mail.example.org"
    head = (
        f"From: Customer {i} <c{i}.{run}@example.org>\r\nTo: support@caseflow.localhost\r\n"
        f"Subject: {rnd.choice(words).title()} problem {i}\r\nMessage-ID: <{mid}>\r\n"
        f"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
    )
    text = f"Hello,\r\n\r\n{body}\r\n\r\nOn Mon someone wrote:\r\n{quoted}\r\n-- \r\nCustomer {i}\r\n"
    if i % 2:
        raw = head + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + text
    else:
        html = "<html><body><p>" + body + "</p><blockquote>" + quoted.replace("\r\n", "<br>") + "</blockquote></body></html>"
        raw = (
            head
            + 'Content-Type: multipart/alternative; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n'
            + text
            + "\r\n--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
            + html
            + "\r\n--b1--\r\n"
        )
    return mid, raw.encode()


class Db:
    def __init__(self, kind, url):
        self.kind, self.url = kind, url

    def query(self, sql):
        if self.kind == "sqlite":
            import sqlite3

            path = self.url[len("sqlite://"):]
            if not os.path.exists(path):
                return []
            con = sqlite3.connect(path, timeout=10)
            try:
                return con.execute(sql).fetchall()
            except sqlite3.OperationalError:
                return []
            finally:
                con.close()
        out = subprocess.run(["psql", "-At", "-F", "\t", self.url, "-c", sql], capture_output=True, text=True)
        if out.returncode != 0:
            return []
        return [tuple(l.split("\t")) for l in out.stdout.splitlines() if l]

    def count(self):
        r = self.query("SELECT count(*) FROM inbound_messages")
        return int(r[0][0]) if r else 0

    def times(self):
        rows = self.query("SELECT dedup_key, created_at FROM inbound_messages")
        return {k[len("mid:"):]: parse_ts(t) for k, t in rows}


def parse_ts(t):
    t = str(t).replace("T", " ")
    fmt = "%Y-%m-%d %H:%M:%S.%f" if "." in t else "%Y-%m-%d %H:%M:%S"
    return datetime.datetime.strptime(t, fmt).replace(tzinfo=datetime.timezone.utc).timestamp()


def start_server(args, work, imap_port):
    port = free_port()
    cfg = os.path.join(work, "caseflow.toml")
    with open(cfg, "w") as f:
        f.write(
            f'[server]\nbind = "127.0.0.1:{port}"\n[metrics]\nbind = "127.0.0.1:0"\n[logging]\nfilter = "warn"\n'
            f'[database]\nurl = "{args.db_url}"\nmax_connections = 12\n'
            f'[email]\nsupport_addresses = ["support@caseflow.localhost"]\n'
            f'[[email.mailboxes]]\nname = "bench"\nhost = "127.0.0.1"\nport = {imap_port}\ntls = "plain"\n'
            f'username = "{USER}"\npassword = "{PASSWORD}"\nbatch_size = {args.batch}\npoll_interval_secs = 5\n'
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEFLOW")}
    env["RUST_LOG"] = "warn"
    t0 = time.time()
    proc = subprocess.Popen([args.bin, "--config", cfg, "serve"], env=env, stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(work, "server.log"), "w"))
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1)
            break
        except Exception:
            time.sleep(0.05)
    return proc, t0


def append_all(imap_port, msgs):
    m = imaplib.IMAP4("127.0.0.1", imap_port)
    m.login(USER, PASSWORD)
    for _, raw in msgs:
        m.append("INBOX", None, None, raw)
    m.logout()


def wait_count(db, n, timeout):
    # Polled slowly (the poll itself costs CPU on the same 2 cores); the end time is read from
    # the database: the commit time of the last message.
    deadline = time.time() + timeout
    while time.time() < deadline:
        if db.count() >= n:
            return max(db.times().values())
        time.sleep(2)
    sys.exit(f"bench: only {db.count()} of {n} messages committed after {timeout} s")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("bin")
    p.add_argument("db_kind", choices=["sqlite", "postgres"])
    p.add_argument("db_url")
    p.add_argument("mode", choices=["backlog", "steady"])
    p.add_argument("--count", type=int, default=10000)
    p.add_argument("--rate", type=float, default=100)
    p.add_argument("--duration", type=float, default=30)
    p.add_argument("--batch", type=int, default=500)
    args = p.parse_args()
    work = tempfile.mkdtemp(prefix="cf_bench_ingest_")
    imap_port = free_port()
    env = dict(os.environ, IMAP_USERS=f"{USER}:{PASSWORD}")
    subprocess.run([os.path.join(ROOT, "scripts/mail/start-imap.sh"), os.path.join(work, "imap"), str(imap_port)],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    db = Db(args.db_kind, args.db_url)
    run = str(int(time.time()))
    proc = None
    try:
        if args.mode == "backlog":
            msgs = [message(i, run) for i in range(args.count)]
            size = sum(len(r) for _, r in msgs) / len(msgs)
            append_all(imap_port, msgs)
            proc, t0 = start_server(args, work, imap_port)
            t1 = wait_count(db, args.count, 600)
            times = sorted(db.times().values())
            span = times[-1] - times[0]
            print(f"| {args.db_kind} | backlog of {args.count} (avg {size:.0f} B), batch {args.batch} | "
                  f"{args.count / (t1 - t0):.0f} msg/s wall (start-up included: {t1 - t0:.1f} s) | "
                  f"{args.count / span:.0f} msg/s first-to-last commit |")
        else:
            proc, _ = start_server(args, work, imap_port)
            n = int(args.rate * args.duration)
            msgs = [message(i, run) for i in range(n)]
            appended = {}
            m = imaplib.IMAP4("127.0.0.1", imap_port)
            m.login(USER, PASSWORD)
            start = time.time()
            for i, (mid, raw) in enumerate(msgs):
                due = start + i / args.rate
                d = due - time.time()
                if d > 0:
                    time.sleep(d)
                m.append("INBOX", None, None, raw)
                appended[mid] = time.time()
            m.logout()
            wait_count(db, n, 120)
            committed = db.times()
            lat = sorted((committed[mid] - t) * 1000 for mid, t in appended.items() if mid in committed)
            pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
            print(f"| {args.db_kind} | steady {args.rate:.0f} msg/s for {args.duration:.0f} s ({n} messages) | "
                  f"p50 {pct(0.50):.0f} ms | p99 {pct(0.99):.0f} ms | max {lat[-1]:.0f} ms |")
    finally:
        if proc:
            proc.terminate()
            proc.wait()
        subprocess.run([os.path.join(ROOT, "scripts/mail/stop-imap.sh"), os.path.join(work, "imap")],
                       stdout=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
