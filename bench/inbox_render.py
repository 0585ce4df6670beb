#!/usr/bin/env python3
"""Times the agent inbox page in a real headless Chromium (Debian chromium + chromium-driver),
driven over WebDriver with the standard library only: log in once, then load the page afresh
ROUNDS times and read how long after navigation start the inbox table was on screen (the
`cf-inbox-rendered` performance mark app.js sets after it has built the table).

Usage: inbox_render.py BASE_URL EMAIL PASSWORD VIEW [ROUNDS]
Prints: "view VIEW: rendered in p50 X ms, p90 Y ms, max Z ms over N loads (ROWS rows)".
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def call(base, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read() or b"null")["value"]


def main():
    base, email, password, view = sys.argv[1:5]
    rounds = int(sys.argv[5]) if len(sys.argv) > 5 else 20
    driver_bin = next(p for p in ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver") if os.path.exists(p))
    port = free_port()
    driver = subprocess.Popen([driver_bin, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    profile = tempfile.mkdtemp(prefix="cf-bench-chromium-")
    wd = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if call(wd, "GET", "/status")["ready"]:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,800", f"--user-data-dir={profile}"]}}}}
        session = call(wd, "POST", "/session", caps)["sessionId"]
        s = f"/session/{session}"

        def js(script):
            return call(wd, "POST", s + "/execute/sync", {"script": script, "args": []})

        def wait(script, what, secs=30):
            end = time.time() + secs
            while time.time() < end:
                if js(script):
                    return
                time.sleep(0.05)
            raise SystemExit(f"timed out waiting for {what}")

        call(wd, "POST", s + "/url", {"url": base + "/app"})
        wait("return !!document.getElementById('cf-login')", "the login form")
        js(f"""document.getElementById('cf-email').value = {json.dumps(email)};
               document.getElementById('cf-password').value = {json.dumps(password)};
               document.getElementById('cf-login-submit').click(); return true;""")
        wait("return !!document.getElementById('cf-inbox-title')", "the inbox after login")
        times, rows = [], 0
        for _ in range(rounds):
            call(wd, "POST", s + "/url", {"url": base + "/app#/inbox/" + view})
            js("location.reload(); return true;")
            wait("return performance.getEntriesByName('cf-inbox-rendered').length > 0", "the inbox rendered")
            times.append(js("return performance.getEntriesByName('cf-inbox-rendered')[0].startTime;"))
            rows = js("return document.querySelectorAll('#cf-case-rows tr').length;")
        times.sort()
        pick = lambda q: times[min(len(times) - 1, round((len(times) - 1) * q))]
        print(f"view {view}: rendered in p50 {pick(0.5):.0f} ms, p90 {pick(0.9):.0f} ms, max {times[-1]:.0f} ms "
              f"over {len(times)} loads ({rows} rows)")
        call(wd, "DELETE", s)
    finally:
        driver.terminate()
        driver.wait()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
