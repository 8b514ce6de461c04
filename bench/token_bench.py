"""Token-endpoint throughput and PIN login latency against a real `varco serve`.

Starts the broker with the demo config in a temporary data folder (one uvicorn worker,
a separate process from this load generator), then measures:

* code exchanges per second (codes come from SSO authorizations after one PIN login),
* refresh grants per second (concurrent rotation chains),
* PIN login latency (POST of the PIN form up to the redirect to the RP) against the cost
  of the argon2id verification alone, with the same parameters.

Run: ``.venv/bin/python bench/token_bench.py [--codes 400] [--refreshes 3000]``
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import html
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CLIENT, SECRET = "demo-rp", "demo-rp-secret"
CF, PIN = "BNCLRA85M41Z404W", "Abroad01"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_broker(tmp: Path, port: int) -> subprocess.Popen:
    config = tmp / "bench.yaml"
    config.write_text(
        f"data_dir: {tmp / 'data'}\nclients: {ROOT / 'config/clients.demo.yaml'}\n"
        f"policies_dir: {ROOT / 'policies'}\nmappings_dir: {ROOT / 'mappings'}\n"
        "demo_rp: true\nproviders:\n  pin:\n    demo_users: true\n")
    log = (tmp / "broker.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "broker.cli.main", "serve", "--config", str(config),
         "--port", str(port)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/.well-known/openid-configuration", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit((tmp / "broker.log").read_text())


def s256(v: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(v.encode()).digest()).decode().rstrip("=")


def authorize_params(base: str) -> tuple[dict[str, str], str]:
    verifier = secrets.token_urlsafe(48)
    return {"response_type": "code", "client_id": CLIENT,
            "redirect_uri": f"{base}/demo-rp/callback",
            "scope": "openid profile fiscal_number offline_access",
            "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8),
            "code_challenge": s256(verifier), "code_challenge_method": "S256",
            "idp_hint": "pin"}, verifier


def field(page: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert m, name
    return html.unescape(m.group(1))


def pin_login(http: httpx.Client, base: str, pid: int | None = None
              ) -> tuple[float, str, str]:
    """One full PIN login; returns (the PIN POST's cost, code, verifier).

    With ``pid`` the cost is the broker process's CPU seconds for the POST, summed over
    its threads in nanoseconds (schedstat: ``/proc/<pid>/stat`` counts 10 ms ticks);
    requests are sequential, so nothing else runs there. Without, the client's wall time.
    """
    params, verifier = authorize_params(base)
    r = http.get(f"/authorize?{urlencode(params)}")
    while r.status_code in (302, 303):
        r = http.get(r.headers["location"])
    before = thread_cpu(pid) if pid else {}
    t0 = time.perf_counter()
    r = http.post("/pin/login", data={"csrf_token": field(r.text, "csrf_token"),
                                      "tx": field(r.text, "tx"), "fiscal_code": CF, "pin": PIN})
    elapsed = cpu_between(before, thread_cpu(pid)) if pid else time.perf_counter() - t0
    assert r.status_code == 303, r.text[:300]
    code = parse_qs(urlsplit(r.headers["location"]).query)["code"][0]
    return elapsed, code, verifier


def sso_code(http: httpx.Client, base: str) -> tuple[str, str]:
    params, verifier = authorize_params(base)
    r = http.get(f"/authorize?{urlencode(params)}")
    assert r.status_code in (302, 303) and "code=" in r.headers["location"], r.text[:300]
    return parse_qs(urlsplit(r.headers["location"]).query)["code"][0], verifier


def cpu_seconds(pid: int) -> float:
    """User+system CPU time of a process so far, its finished children's included (Linux
    /proc: utime, stime, cutime, cstime), to report work per core. A server that runs a
    command per request (pysaml2's ``xmlsec1`` backend did, twice per signature) pays for
    it: leaving the children out hid 50 ms per SPID login of the test IdP's cost."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def thread_cpu(pid: int) -> dict[str, int]:
    """On-CPU nanoseconds of each live thread of ``pid`` (schedstat).

    ``/proc/<pid>/stat`` counts in clock ticks (10 ms): fine for totals over many
    flows, too coarse to split one flow into its requests. Per thread, because idle
    thread-pool workers exit and would take their time out of a plain sum.
    """
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found[task.name] = int((task / "schedstat").read_text().split()[0])
    return found


def cpu_between(before: dict[str, int], after: dict[str, int]) -> float:
    """Seconds spent between two ``thread_cpu`` readings by threads alive at the second."""
    return sum(ns - before.get(tid, 0) for tid, ns in after.items()) / 1e9


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000


async def run_concurrent(base: str, jobs: list, concurrency: int, make_request) -> tuple:
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal errors
            while not queue.empty():
                job = queue.get_nowait()
                t0 = time.perf_counter()
                ok = await make_request(client, job, queue)
                latencies.append(time.perf_counter() - t0)
                errors += 0 if ok else 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return latencies, errors, wall


def report(name: str, latencies: list[float], errors: int, wall: float, cpu: float) -> str:
    return (f"| {name} | {len(latencies)} | {len(latencies) / wall:.0f}/s | "
            f"{len(latencies) / cpu:.0f}/s | {1000 * cpu / len(latencies):.2f} ms | "
            f"{pct(latencies, 0.5):.1f} ms | {pct(latencies, 0.99):.1f} ms | {errors} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--codes", type=int, default=400)
    parser.add_argument("--refreshes", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--logins", type=int, default=40)
    args = parser.parse_args()

    from broker.clock import SystemClock  # noqa: F401 - import check only
    from providers.pin.hashing import PinHasher

    with tempfile.TemporaryDirectory() as tmpdir:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = start_broker(Path(tmpdir), port)
        try:
            rows = []
            with httpx.Client(base_url=base, timeout=30) as browser:
                login_times = []
                for _ in range(args.logins):
                    browser.cookies.clear()
                    elapsed, _code, _verifier = pin_login(browser, base, proc.pid)
                    login_times.append(elapsed)
                codes = [sso_code(browser, base) for _ in range(args.codes)]

            async def exchange(client, job, _queue) -> bool:
                code, verifier = job
                r = await client.post("/token", auth=(CLIENT, SECRET), data={
                    "grant_type": "authorization_code", "code": code,
                    "redirect_uri": f"{base}/demo-rp/callback", "code_verifier": verifier})
                if r.status_code == 200:
                    refresh_tokens.append(r.json()["refresh_token"])
                return r.status_code == 200

            refresh_tokens: list[str] = []
            cpu0 = cpu_seconds(proc.pid)
            lat, err, wall = asyncio.run(run_concurrent(base, codes, args.concurrency, exchange))
            rows.append(report("code exchange", lat, err, wall, cpu_seconds(proc.pid) - cpu0))

            per_chain = max(1, args.refreshes // max(1, len(refresh_tokens)))
            jobs = [(rt, per_chain) for rt in refresh_tokens]

            async def refresh(client, job, queue) -> bool:
                token, left = job
                r = await client.post("/token", auth=(CLIENT, SECRET), data={
                    "grant_type": "refresh_token", "refresh_token": token})
                if r.status_code != 200:
                    return False
                if left > 1:
                    queue.put_nowait((r.json()["refresh_token"], left - 1))
                return True

            cpu0 = cpu_seconds(proc.pid)
            lat, err, wall = asyncio.run(run_concurrent(base, jobs, args.concurrency, refresh))
            rows.append(report("refresh grant", lat, err, wall, cpu_seconds(proc.pid) - cpu0))
        finally:
            proc.terminate()
            proc.wait(timeout=15)

    hasher = PinHasher()
    stored = hasher.hash(PIN)
    t0 = time.thread_time()
    for _ in range(args.logins):
        hasher.verify(stored, PIN)
    hash_cpu = (time.thread_time() - t0) / args.logins * 1000
    login_cpu = statistics.fmean(login_times) * 1000

    print(f"Varco token bench, {os.cpu_count()} cores, 1 broker process, embedded SQLite, "
          f"concurrency {args.concurrency}")
    print("| what | requests | throughput | per broker CPU-second | broker CPU/request "
          "| p50 | p99 | errors |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(row)
    print(f"\nPIN login (form POST to redirect), broker CPU: {login_cpu:.1f} ms per login; "
          f"argon2id verify alone: {hash_cpu:.1f} ms CPU; overhead "
          f"{100 * (login_cpu / hash_cpu - 1):.0f}% (target: within 20%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
