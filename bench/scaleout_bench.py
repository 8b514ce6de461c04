"""Scale-out benchmark: PIN and SPID logins and refresh grants on 1 and 2 broker processes
behind nginx, on the embedded stores and on Redis + PostgreSQL.

Each configuration is a fresh cluster: ``varco serve`` subprocesses sharing one data
folder (keys), nginx round robin in front (``tests/scaleout/cluster.py``'s
``BrokerProcess`` and ``nginx_conf``), and the pysaml2 test IdP in its own process
(started as ``bench/spid_bench.py`` does, metadata both ways through the load balancer).
Stores:

* ``embedded``: SQLite for both the ephemeral and the durable part (the default);
* ``redis-postgres``: a real redis-server and a real PostgreSQL cluster (``initdb`` /
  ``pg_ctl`` in a temp folder, ``varco db upgrade`` on the template database; each
  configuration gets a fresh database copied from it), both on 127.0.0.1 free ports;
* ``redis-sqlite`` (optional): Redis ephemeral, SQLite durable.

Measured through nginx from this process (the load generator shares the machine):

* PIN login flows (authorize, PIN form, PIN POST with argon2id, role choice if asked,
  code exchange): flows/s, p50/p99 of a whole flow;
* SPID login flows through the test IdP (``spid_bench.drive``: 3 broker + 2 IdP requests,
  cross-site ACS POST): flows/s, p50/p99;
* refresh grants, closed loop (concurrent rotation chains, each sends its next grant when
  the last one answered): the peak grants/s, p50/p99, and grants per broker CPU-second
  (utime+stime of every broker process from ``/proc``, summed);
* refresh grants, open loop at 80% of that peak: requests are *scheduled* at a fixed
  rate whatever the answers do, and a request's latency counts from its scheduled time
  (no coordinated omission): p50/p99 there, against the target p99 < 50 ms.

Broker CPU per flow is reported too: wall-clock figures on a shared 2-core machine
depend on what else runs, CPU per request much less.

Run: ``/work/venv/bin/python bench/scaleout_bench.py [--stores embedded,redis-postgres]
[--processes 1,2] [--pin-flows 80] [--spid-flows 40] [--refreshes 3000] [--paced-seconds 10]``
Prints two markdown tables; the exit status is 1 when any request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import spid_bench  # noqa: E402
from token_bench import cpu_seconds  # noqa: E402

from tests.oidc.oidc_helpers import LAURA, PIN_LAURA, Browser, demo_rp  # noqa: E402
from tests.ops.sso import login_code  # noqa: E402
from tests.scaleout.cluster import BrokerProcess, free_port, nginx_conf  # noqa: E402
from tests.store.postgres_env import PostgresServer, start_postgres  # noqa: E402
from tests.store.redis_env import RedisServer, start_redis  # noqa: E402

CLIENT = ("demo-rp", "demo-rp-secret")
STORES = {"embedded": ("sqlite", "sqlite"), "redis-postgres": ("redis", "postgres"),
          "redis-sqlite": ("redis", "sqlite")}


def pct(values: list[float], p: float) -> float:
    """The p-quantile in milliseconds (nan when nothing was measured)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000


@dataclass
class BenchCluster:
    """``n`` brokers behind nginx plus the test IdP; stopped by ``stop`` in reverse order."""

    folder: Path
    n: int
    ephemeral: str
    durable: str
    redis_url: str | None
    database_url: str | None
    key_size: int
    port: int = field(default_factory=free_port)
    brokers: list[BrokerProcess] = field(default_factory=list)
    nginx: spid_bench.Proc | None = None
    idp: spid_bench.Proc | None = None
    idp_url: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_config(self) -> Path:
        idp_dir = self.folder / "spid-idps"
        idp_dir.mkdir(parents=True)
        config = self.folder / "varco.yaml"
        config.write_text(f"""\
issuer: {self.url}
data_dir: {self.folder / 'data'}
clients: {ROOT / 'config/clients.demo.yaml'}
policies_dir: {ROOT / 'policies'}
mappings_dir: {ROOT / 'mappings'}
demo_rp: true
providers:
  pin:
    demo_users: true
{spid_bench.spid_section(self.key_size, idp_dir)}store:
  ephemeral: {self.ephemeral}
  durable: {self.durable}
  redis_prefix: '{self.folder.name}:'
""")
        return config

    def start(self) -> BenchCluster:
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.write_config()
        env = {**os.environ, "VARCO_SECRET_KEY": "bench-secret-key-0123456789abcdef0123"}
        if self.redis_url:
            env["VARCO_REDIS_URL"] = self.redis_url
        if self.database_url:
            env["VARCO_DATABASE_URL"] = self.database_url
        try:
            # One after the other: the first creates keys and demo users, the others load them.
            for i in range(self.n):
                self.brokers.append(BrokerProcess(config, free_port(), env,
                                                  self.folder / f"broker{i}.log").start())
            prefix = self.folder / "nginx"
            prefix.mkdir()
            # (its buffers keep SAML POST bodies and pages in memory: nginx's workers run
            # as nobody and cannot write temp files under our 0700 temp folder)
            conf = nginx_conf(prefix, self.port, [b.port for b in self.brokers])
            self.nginx = spid_bench.launch("nginx", ["/usr/sbin/nginx", "-p", str(prefix),
                                                     "-c", str(conf)],
                                           self.folder, f"{self.url}/healthz")
            iport = free_port()
            self.idp_url = f"http://127.0.0.1:{iport}"
            self.idp = spid_bench.launch(
                "idp", [sys.executable, "-m", "providers.saml.testidp", "--port", str(iport),
                        "--sp-metadata", f"{self.url}/spid/metadata",
                        "--data", str(self.folder / "testidp"),
                        "--write-metadata", str(self.folder / "spid-idps" / "test-idp.xml")],
                self.folder, f"{self.idp_url}/metadata")
        except BaseException:
            self.stop()
            raise
        return self

    def broker_cpu(self) -> float:
        """CPU seconds used so far by all broker processes together."""
        return sum(cpu_seconds(b.proc.pid) for b in self.brokers if b.proc is not None)

    def stop(self) -> None:
        """Terminate (then kill) the IdP, nginx and every broker."""
        for proc in (self.idp, self.nginx):
            if proc is not None:
                spid_bench.stop(proc)
        for broker in self.brokers:
            broker.stop()


# ---------------------------------------------------------------- PIN flows

def one_pin_flow(base: str) -> tuple[float, str | None]:
    """A whole PIN login and code exchange; (seconds, refresh token or None on failure)."""
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
    except Exception:  # any failure of the flow is an error in the table
        return time.perf_counter() - t0, None
    finally:
        browser.close()


def run_pin_flows(base: str, n: int, concurrency: int
                  ) -> tuple[list[float], int, float, list[str]]:
    """``n`` flows on ``concurrency`` threads: latencies, errors, wall time, refresh tokens."""
    latencies: list[float] = []
    refresh_tokens: list[str] = []
    errors = 0
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for elapsed, rt in pool.map(lambda _: one_pin_flow(base), range(n)):
            if rt is None:
                errors += 1
            else:
                latencies.append(elapsed)
                refresh_tokens.append(rt)
    return latencies, errors, time.perf_counter() - started, refresh_tokens


# ---------------------------------------------------------------- refresh grants

async def _grant(http: httpx.AsyncClient, token: str) -> str | None:
    r = await http.post("/token", data={"grant_type": "refresh_token", "refresh_token": token},
                        auth=CLIENT)
    return r.json()["refresh_token"] if r.status_code == 200 else None


async def closed_loop(base: str, chains: list[str], total: int
                      ) -> tuple[list[float], int, float, list[str]]:
    """Each chain sends its next grant when the last answered: the peak rate.

    Returns latencies, errors, wall time and the live refresh token of each chain.
    """
    latencies: list[float] = []
    errors = 0
    remaining = total
    live: list[str] = []
    limits = httpx.Limits(max_connections=len(chains), max_keepalive_connections=len(chains))
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:

        async def chain(token: str) -> None:
            nonlocal remaining, errors
            while remaining > 0:
                remaining -= 1
                t0 = time.perf_counter()
                try:
                    new = await _grant(http, token)
                except httpx.HTTPError:
                    new = None
                latencies.append(time.perf_counter() - t0)
                if new is None:
                    errors += 1
                    return
                token = new
            live.append(token)

        started = time.perf_counter()
        await asyncio.gather(*(chain(t) for t in chains))
        wall = time.perf_counter() - started
    return latencies, errors, wall, live


async def open_loop(base: str, chains: list[str], rate: float, seconds: float
                    ) -> tuple[list[float], int, float]:
    """Grants *scheduled* at ``rate``/s for ``seconds``; latency from the scheduled time.

    A request whose chain is still busy waits for a free one, and that wait is part of
    its latency: a server that falls behind shows it in p99 instead of slowing the
    generator down (coordinated omission).
    """
    latencies: list[float] = []
    errors = 0
    free: asyncio.Queue[str] = asyncio.Queue()
    for token in chains:
        free.put_nowait(token)
    limits = httpx.Limits(max_connections=len(chains), max_keepalive_connections=len(chains))
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:

        async def one(scheduled: float) -> None:
            nonlocal errors
            token = await free.get()
            try:
                new = await _grant(http, token)
            except httpx.HTTPError:
                new = None
            latencies.append(time.perf_counter() - scheduled)
            if new is None:
                errors += 1  # the chain is dead: it does not go back to the pool
            else:
                free.put_nowait(new)

        tasks = []
        started = time.perf_counter()
        for i in range(int(rate * seconds)):
            scheduled = started + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(scheduled)))
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - started
    return latencies, errors, wall


# ---------------------------------------------------------------- one configuration

@dataclass
class Row:
    processes: int
    stores: str
    pin: tuple[list[float], int, float, float]  # latencies, errors, wall, broker CPU
    spid: tuple[list[float], int, float, float]
    peak: tuple[list[float], int, float, float]
    paced: tuple[list[float], int, float, float]  # latencies, errors, wall, target rate
    spid_errors: list[str]

    def errors(self) -> int:
        return self.pin[1] + self.spid[1] + self.peak[1] + self.paced[1]


def bench_one(cluster: BenchCluster, args: argparse.Namespace, name: str) -> Row:
    base = cluster.url
    for _ in range(3):  # warm up each process (nginx alternates)
        one_pin_flow(base)
    warm, _ = asyncio.run(spid_bench.drive(base, cluster.idp_url, 2 * cluster.n, 1,
                                             "cross-site"))
    if warm.errors:
        raise RuntimeError(f"SPID warm-up failed: {warm.errors[0]}")

    cpu0 = cluster.broker_cpu()
    lat, err, wall, rts = run_pin_flows(base, args.pin_flows, args.flow_concurrency)
    pin = (lat, err, wall, cluster.broker_cpu() - cpu0)

    cpu0 = cluster.broker_cpu()
    totals, swall = asyncio.run(spid_bench.drive(base, cluster.idp_url, args.spid_flows,
                                                 args.flow_concurrency, "cross-site"))
    spid = (totals.flows, len(totals.errors), swall, cluster.broker_cpu() - cpu0)

    chains = rts[:args.chains]
    if not chains:
        raise RuntimeError("no PIN flow succeeded: no refresh token to rotate")
    cpu0 = cluster.broker_cpu()
    glat, gerr, gwall, live = asyncio.run(closed_loop(base, chains, args.refreshes))
    peak = (glat, gerr, gwall, cluster.broker_cpu() - cpu0)

    rate = 0.8 * len(glat) / gwall
    plat, perr, pwall = asyncio.run(open_loop(base, live, rate, args.paced_seconds))
    row = Row(cluster.n, name, pin, spid, peak, (plat, perr, pwall, rate), totals.errors[:3])
    print(f"done: {name} x{cluster.n}: peak {len(glat) / gwall:.0f} grants/s, "
          f"p99 at 80% {pct(plat, .99):.1f} ms, errors {row.errors()}",
          file=sys.stderr, flush=True)
    return row


def flow_cells(fig: tuple[list[float], int, float, float]) -> str:
    lat, err, wall, cpu = fig
    per_cpu = f"{1000 * cpu / len(lat):.1f} ms" if lat else "-"
    return (f"{len(lat) / wall:.1f}/s | {pct(lat, .5):.0f} ms | {pct(lat, .99):.0f} ms | "
            f"{per_cpu} | {err}")


def print_tables(rows: list[Row], args: argparse.Namespace, load: float) -> None:
    print(f"\n{os.cpu_count()} cores, load average {load:.2f} at start; all through nginx on "
          f"127.0.0.1; load generator, nginx, test IdP, Redis and PostgreSQL on the same "
          f"cores. PIN flows: {args.pin_flows}, SPID flows: {args.spid_flows}, both at "
          f"concurrency {args.flow_concurrency}; refresh grants: {args.refreshes} closed loop "
          f"on {args.chains} chains, then open loop at 80% of that peak for "
          f"{args.paced_seconds:g} s. SP key RSA-{args.key_size}.\n")
    print("| processes | stores | PIN flows/s | PIN p50 | PIN p99 | broker CPU/PIN flow | "
          "PIN errors | SPID flows/s | SPID p50 | SPID p99 | broker CPU/SPID flow | "
          "SPID errors |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r.processes} | {r.stores} | {flow_cells(r.pin)} | {flow_cells(r.spid)} |")
    print("\n| processes | stores | peak grants/s | grants per broker CPU-s | peak p50 | "
          "peak p99 | 80% rate (achieved) | p50 at 80% | p99 at 80% | grant errors |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        glat, gerr, gwall, gcpu = r.peak
        plat, perr, pwall, rate = r.paced
        print(f"| {r.processes} | {r.stores} | {len(glat) / gwall:.0f}/s | "
              f"{len(glat) / gcpu:.0f}/s | {pct(glat, .5):.1f} ms | {pct(glat, .99):.1f} ms | "
              f"{rate:.0f}/s ({len(plat) / pwall:.0f}/s) | {pct(plat, .5):.1f} ms | "
              f"{pct(plat, .99):.1f} ms | {gerr + perr} |")
    for r in rows:
        for e in r.spid_errors:
            print(f"SPID error ({r.stores} x{r.processes}): {e}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stores", default="embedded,redis-postgres",
                        help=f"comma-separated, of {', '.join(STORES)}")
    parser.add_argument("--processes", default="1,2", help="broker process counts")
    parser.add_argument("--pin-flows", type=int, default=80)
    parser.add_argument("--spid-flows", type=int, default=40)
    parser.add_argument("--flow-concurrency", type=int, default=8)
    parser.add_argument("--refreshes", type=int, default=3000)
    parser.add_argument("--chains", type=int, default=32)
    parser.add_argument("--paced-seconds", type=float, default=10.0)
    parser.add_argument("--key-size", type=int, default=3072, help="SP RSA key size")
    args = parser.parse_args()
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    counts = [int(n) for n in args.processes.split(",")]
    bad = [s for s in stores if s not in STORES]
    if bad or not stores or any(n < 1 for n in counts) or min(
            args.pin_flows, args.spid_flows, args.refreshes, args.chains) < 1:
        parser.error(f"unknown store {bad} or non-positive count")

    load = os.getloadavg()[0]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="scaleout-bench-") as tmp_name:
        tmp = Path(tmp_name)
        redis: RedisServer | None = None
        postgres: PostgresServer | None = None
        try:
            if any(STORES[s][0] == "redis" for s in stores):
                redis = start_redis(tmp / "redis")
            if any(STORES[s][1] == "postgres" for s in stores):
                postgres = start_postgres()  # runs `varco db upgrade` on the template
            for store in stores:
                ephemeral, durable = STORES[store]
                for n in counts:
                    db = postgres.create_database() if postgres and durable == "postgres" \
                        else None
                    cluster = BenchCluster(tmp / f"{store}-{n}", n, ephemeral, durable,
                                           redis.url if redis else None, db, args.key_size)
                    cluster.start()
                    try:
                        rows.append(bench_one(cluster, args, store))
                    finally:
                        cluster.stop()
                        if db and postgres:
                            postgres.drop_database(db)
        finally:
            if postgres is not None:
                postgres.stop()
            if redis is not None:
                redis.stop()
    print_tables(rows, args, load)
    return 1 if any(r.errors() for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
