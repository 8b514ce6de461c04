"""Scale-out benchmark: PIN logins and refresh grants on 1 and 2 broker processes behind
nginx, with the embedded (SQLite) and the Redis ephemeral store.

Each configuration is a fresh cluster (``tests/scaleout/cluster.py``: ``varco serve``
subprocesses on one data folder, nginx round robin, a real redis-server). Measured
through nginx from this process:

* PIN login flows: authorize, PIN form, PIN POST (argon2id), role choice if asked, code,
  code exchange: flows/s and p50/p99 of a whole flow;
* refresh grants: concurrent rotation chains: grants/s and p50/p99 of one grant.

Run: ``/work/venv/bin/python bench/scaleout_bench.py [--flows 120] [--refreshes 3000]``
Prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.oidc.oidc_helpers import LAURA, PIN_LAURA, Browser, demo_rp  # noqa: E402
from tests.ops.sso import login_code  # noqa: E402
from tests.scaleout.cluster import Cluster  # noqa: E402
from tests.store.redis_env import start_redis  # noqa: E402


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000


def one_flow(base: str) -> tuple[float, str | None]:
    """A whole PIN login and code exchange; (seconds, refresh token)."""
    rp = demo_rp(base, scope="openid profile offline_access")
    browser = Browser(base)
    t0 = time.perf_counter()
    try:
        pending = rp.authorize_params()
        code = login_code(browser, pending, LAURA, PIN_LAURA)
        tokens = rp.exchange(browser.http, pending, code)
        elapsed = time.perf_counter() - t0
        if tokens.status_code != 200:
            return elapsed, None
        return elapsed, tokens.json().get("refresh_token")
    finally:
        browser.close()


def run_flows(base: str, n: int, concurrency: int) -> tuple[list[float], int, float, list[str]]:
    latencies: list[float] = []
    refresh_tokens: list[str] = []
    errors = 0
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for elapsed, rt in pool.map(lambda _: _safe_flow(base), range(n)):
            latencies.append(elapsed)
            if rt is None:
                errors += 1
            else:
                refresh_tokens.append(rt)
    return latencies, errors, time.perf_counter() - started, refresh_tokens


def _safe_flow(base: str) -> tuple[float, str | None]:
    try:
        return one_flow(base)
    except Exception:
        return 0.0, None


async def run_refreshes(base: str, chains: list[str], total: int
                        ) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    remaining = total
    limits = httpx.Limits(max_connections=len(chains), max_keepalive_connections=len(chains))
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:

        async def chain(token: str) -> None:
            nonlocal remaining, errors
            while remaining > 0:
                remaining -= 1
                t0 = time.perf_counter()
                r = await http.post("/token", data={"grant_type": "refresh_token",
                                                    "refresh_token": token},
                                    auth=("demo-rp", "demo-rp-secret"))
                latencies.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    errors += 1
                    return
                token = r.json()["refresh_token"]

        started = time.perf_counter()
        await asyncio.gather(*(chain(t) for t in chains))
        wall = time.perf_counter() - started
    return latencies, errors, wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--flows", type=int, default=120)
    parser.add_argument("--flow-concurrency", type=int, default=8)
    parser.add_argument("--refreshes", type=int, default=3000)
    parser.add_argument("--chains", type=int, default=32)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        redis = start_redis(tmp / "redis")
        try:
            for store in ("sqlite", "redis"):
                for n in (1, 2):
                    folder = tmp / f"{store}-{n}"
                    cluster = Cluster(folder, redis.url if store == "redis" else None, n=n,
                                      ephemeral=store).start()
                    try:
                        for _ in range(3):  # warm up each process
                            one_flow(cluster.url)
                        lat, err, wall, rts = run_flows(cluster.url, args.flows,
                                                        args.flow_concurrency)
                        chains = rts[:args.chains]
                        glat, gerr, gwall = asyncio.run(
                            run_refreshes(cluster.url, chains, args.refreshes))
                    finally:
                        cluster.stop()
                    rows.append(
                        f"| {n} | {store} | {len(lat) / wall:.1f}/s | {pct(lat, .5):.0f} ms | "
                        f"{pct(lat, .99):.0f} ms | {err} | {len(glat) / gwall:.0f}/s | "
                        f"{pct(glat, .5):.1f} ms | {pct(glat, .99):.1f} ms | {gerr} |")
                    print(rows[-1], file=sys.stderr, flush=True)
        finally:
            redis.stop()
    print(f"\nPIN flows: {args.flows} at concurrency {args.flow_concurrency}; refresh grants: "
          f"{args.refreshes} on {args.chains} concurrent chains; through nginx.\n")
    print("| processes | ephemeral | PIN flows/s | flow p50 | flow p99 | flow errors | "
          "grants/s | grant p50 | grant p99 | grant errors |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
