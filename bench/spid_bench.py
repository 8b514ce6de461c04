"""The full brokered SPID login against a real `varco serve` and a separate test IdP.

Two server processes, one load generator (this process), all on 127.0.0.1:

* the broker, ``python -m broker.cli.main serve`` with SPID on (``test_idp: false``) and its
  IdP folder in a temporary directory;
* the pysaml2 test IdP, ``python -m providers.saml.testidp``, in its OWN process so that its
  CPU (parsing and verifying the AuthnRequest, signing Response and Assertion) is
  counted apart from the broker's.

Metadata goes both ways as in production: the IdP fetches the broker's
``/spid/metadata`` URL; the IdP writes its metadata file into the broker's IdP folder,
which the broker's registry re-reads when a file there changes.

One flow, as a citizen's browser does it: RP ``/authorize`` with
``idp_hint=spid:<IdP entityID>`` -> broker signs the AuthnRequest (HTTP-Redirect) -> IdP
login form -> credentials -> auto-POST of the signed response to ``/spid/acs`` (by
default cross-site as a real browser sends it: without the broker's SameSite=Lax
cookies, with its SameSite=None return cookie, so the ACS completes at once; with
``--park`` without any cookie, so the broker parks it and resumes it as a GET) -> RP
callback with a code -> the RP's code exchange at ``/token``.

Reported: flows/s, p50/p99 of a whole flow, and CPU per login of the broker and of
the IdP from ``/proc/<pid>/stat`` (utime+stime deltas over the measured flows only),
against the target "broker's share <= 5 ms CPU per login".

Run: ``/work/venv/bin/python bench/spid_bench.py [--logins 200] [--concurrency 8]``
"""

from __future__ import annotations

import argparse
import asyncio
import html
import os
import re
import secrets
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from token_bench import (
    CLIENT,
    ROOT,
    SECRET,
    cpu_between,
    cpu_seconds,
    free_port,
    pct,
    s256,
    thread_cpu,
)

sys.path.insert(0, str(ROOT))
from tests.providers.spid_env import cross_site_cookies  # what a browser sends cross-site

TARGET_MS = 5.0
USER, PASSWORD = "mario.rossi", "test"  # the test IdP's documented SpidL2 user
HINT = ""  # --eidas: "eidas" (the login goes to FICEP), else spid:<the IdP>
MAX_HOPS = 10


@dataclass
class Proc:
    """A server process we started, with the log file its output goes to."""

    name: str
    popen: subprocess.Popen
    log: Path


def launch(name: str, argv: list[str], tmp: Path, ready_url: str) -> Proc:
    """Start ``argv``; wait until ``ready_url`` answers.

    Output goes to a log file, never to a PIPE nobody reads (a full pipe blocks the server).
    """
    log = tmp / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    proc = Proc(name, popen, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            break
        try:
            httpx.get(ready_url, timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    stop(proc)
    raise SystemExit(f"{name} did not start:\n{log.read_text()[-3000:]}")


def stop(proc: Proc) -> None:
    """Terminate, then kill after a timeout; never leave a server behind."""
    if proc.popen.poll() is None:
        proc.popen.terminate()
        try:
            proc.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.popen.kill()
            proc.popen.wait(timeout=10)


def attach_profiler(pid: int, args: argparse.Namespace) -> subprocess.Popen:
    """py-spy attached to the warm broker: the profile holds the measured flows only.

    Started after the warm-up, so imports, key loading and the first compiled templates
    are not in it (they were a third of the samples when py-spy launched the server).
    """
    pyspy = Path(sys.executable).with_name("py-spy")
    spy = subprocess.Popen([str(pyspy), "record", "--pid", str(pid),
                            *shlex.split(args.profile_args), "-f", "raw",
                            "-o", str(args.profile_broker.resolve())],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # py-spy needs a moment to attach before the first sample
    return spy


def detach_profiler(spy: subprocess.Popen) -> None:
    """SIGINT makes py-spy write the profile and exit (SIGTERM would lose it)."""
    spy.send_signal(signal.SIGINT)
    try:
        spy.wait(timeout=60)
    except subprocess.TimeoutExpired:
        spy.kill()


def spid_section(key_size: int, idp_dir: Path) -> str:
    """The ``providers.spid`` YAML of a bench broker (public profile, IdP metadata from
    ``idp_dir``, no embedded test IdP); ``scaleout_bench.py`` uses it too."""
    return f"""\
  spid:
    profile: public
    ipa_code: inps
    key_size: {key_size}
    organization:
      name: Istituto Nazionale della Previdenza Sociale
      display_name: INPS
      url: https://www.inps.it
    contact:
      email: spid@example.it
      phone: "+390612345678"
    idp_metadata_dir: {idp_dir}
    test_idp: false
"""


def write_config(tmp: Path, key_size: int, eidas: bool = False) -> tuple[Path, Path]:
    """The bench broker's settings; the IdP folder its IdP's metadata goes to (with
    ``eidas``, FICEP's: the eIDAS provider rides on the SPID SP)."""
    idp_dir = tmp / "spid-idps"
    idp_dir.mkdir()
    ficep_dir = tmp / "eidas-idps"
    ficep_dir.mkdir()
    extra = f"""\
  eidas:
    ficep_metadata_dir: {ficep_dir}
    attribute_set: minimum
""" if eidas else ""
    config = tmp / "bench.yaml"
    config.write_text(f"""\
data_dir: {tmp / 'data'}
clients: {ROOT / 'config/clients.demo.yaml'}
policies_dir: {ROOT / 'policies'}
mappings_dir: {ROOT / 'mappings'}
demo_rp: true
providers:
{spid_section(key_size, idp_dir)}{extra}""")
    return config, ficep_dir if eidas else idp_dir


@dataclass
class Totals:
    """Client-side figures of the measured flows."""

    flows: list[float] = field(default_factory=list)
    broker_wait: float = 0.0
    idp_wait: float = 0.0
    errors: list[str] = field(default_factory=list)
    # --steps: server pid per base URL; CPU seconds and count per "server METHOD /path".
    pids: dict[str, int] = field(default_factory=dict)
    step_cpu: dict[str, float] = field(default_factory=dict)
    step_loop: dict[str, float] = field(default_factory=dict)  # the event-loop thread's part
    step_n: dict[str, int] = field(default_factory=dict)


def system_seconds(pid: int) -> float:
    """System (kernel) CPU time of a process so far: syscalls, page faults, wake-ups."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[12]) / os.sysconf("SC_CLK_TCK")


def context_switches(pid: int) -> int:
    """Voluntary + involuntary context switches of a process's live threads so far: each
    is a sleep and a wake-up (a thread hand-off, a GIL wait, a lock), CPU in the kernel."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "status").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        total += sum(int(line.split()[1]) for line in text.splitlines()
                     if "ctxt_switches:" in line)
    return total


def hidden_fields(page: str) -> tuple[str, dict[str, str]]:
    action = re.search(r'<form method="post" action="([^"]+)"', page)
    if not action:
        raise AssertionError(f"no form in page: {page[:300]}")
    fields = {html.unescape(n): html.unescape(v) for n, v in
              re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page)}
    return html.unescape(action.group(1)), fields


class Flow:
    """One citizen's browser doing one whole SPID login plus the RP's code exchange."""

    def __init__(self, http: httpx.AsyncClient, bare: httpx.AsyncClient, broker: str, idp: str,
                 mode: str, totals: Totals):
        self.http, self.bare, self.broker, self.idp = http, bare, broker, idp
        self.mode, self.totals = mode, totals  # "cross-site", "park" or "same-site"
        self.redirect_uri = f"{broker}/demo-rp/callback"

    async def _send(self, method: str, url: str, client: httpx.AsyncClient | None = None,
                    **kw) -> httpx.Response:
        server = self.idp if url.startswith(self.idp) else self.broker
        pid = self.totals.pids.get(server)
        cpu0 = thread_cpu(pid) if pid else {}
        t0 = time.perf_counter()
        r = await (client or self.http).request(method, url, **kw)
        spent = time.perf_counter() - t0
        if server == self.idp:
            self.totals.idp_wait += spent
        else:
            self.totals.broker_wait += spent
        if pid:
            step = f"{'IdP' if server == self.idp else 'broker'} {method} {urlsplit(url).path}"
            cpu1 = thread_cpu(pid)
            self.totals.step_cpu[step] = self.totals.step_cpu.get(step, 0.0) + cpu_between(
                cpu0, cpu1)
            main = str(pid)  # uvicorn's event loop runs in the process's main thread
            self.totals.step_loop[step] = self.totals.step_loop.get(step, 0.0) + (
                cpu1.get(main, 0) - cpu0.get(main, 0)) / 1e9
            self.totals.step_n[step] = self.totals.step_n.get(step, 0) + 1
        return r

    async def _follow(self, r: httpx.Response, stop_at: str) -> httpx.Response:
        for _ in range(MAX_HOPS):
            if r.status_code not in (302, 303):
                return r
            loc = r.headers["location"]
            loc = self.broker + loc if loc.startswith("/") else loc
            if loc.startswith(stop_at):
                return r
            r = await self._send("GET", loc)
        raise AssertionError("too many redirects")

    async def run(self) -> None:
        self.http.cookies.clear()
        self.bare.cookies.clear()
        verifier, state = secrets.token_urlsafe(48), secrets.token_urlsafe(12)
        params = {"response_type": "code", "client_id": CLIENT,
                  "redirect_uri": self.redirect_uri, "scope": "openid profile fiscal_number",
                  "state": state, "nonce": secrets.token_urlsafe(12),
                  "code_challenge": s256(verifier), "code_challenge_method": "S256",
                  "idp_hint": HINT or f"spid:{self.idp}"}
        r = await self._send("GET", f"{self.broker}/authorize?{urlencode(params)}")
        form = await self._follow(r, stop_at="\x00")
        token = re.search(r'name="token" value="([^"]+)"', form.text)
        assert form.status_code == 200 and token, f"no IdP form: {form.text[:300]}"
        r = await self._send("POST", f"{self.idp}/login", data={
            "token": html.unescape(token.group(1)), "username": USER, "password": PASSWORD,
            "action": "login"})
        assert r.status_code == 200, f"IdP login {r.status_code}: {r.text[:300]}"
        action, fields = hidden_fields(r.text)
        assert action == f"{self.broker}/spid/acs", action
        # A browser posting from the IdP's site sends only our SameSite=None cookies.
        self.bare.cookies.clear()
        if self.mode == "cross-site":
            for name, value in cross_site_cookies(self.http, urlsplit(action).path).items():
                self.bare.cookies.set(name, value)
        r = await self._send("POST", action, data=fields,
                             client=self.http if self.mode == "same-site" else self.bare)
        r = await self._follow(r, stop_at=self.redirect_uri)
        assert r.status_code in (302, 303), f"ACS answered {r.status_code}: {r.text[:300]}"
        query = parse_qs(urlsplit(r.headers["location"]).query)
        assert query.get("state") == [state] and "code" in query, query
        r = await self._send("POST", f"{self.broker}/token", auth=(CLIENT, SECRET), data={
            "grant_type": "authorization_code", "code": query["code"][0],
            "redirect_uri": self.redirect_uri, "code_verifier": verifier})
        assert r.status_code == 200 and "id_token" in r.json(), r.text[:300]


async def drive(broker: str, idp: str, n: int, concurrency: int, mode: str,
                pids: dict[str, int] | None = None) -> tuple[Totals, float]:
    """``n`` flows over ``concurrency`` browsers; returns the figures and the wall time.

    With ``pids`` (only meaningful at concurrency 1) each request's server CPU is kept.
    """
    totals = Totals(pids=pids or {})
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def browser() -> None:
        # ``bare`` sends the IdP's cross-site POST to the ACS (see ``cross_site_cookies``).
        async with httpx.AsyncClient(timeout=60) as http, httpx.AsyncClient(timeout=60) as bare:
            flow = Flow(http, bare, broker, idp, mode, totals)
            while not queue.empty():
                queue.get_nowait()
                t0 = time.perf_counter()
                try:
                    await flow.run()
                except (AssertionError, httpx.HTTPError, KeyError, ValueError) as exc:
                    totals.errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
                    continue
                totals.flows.append(time.perf_counter() - t0)

    started = time.perf_counter()
    await asyncio.gather(*(browser() for _ in range(concurrency)))
    return totals, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logins", type=int, default=200, help="measured flows")
    parser.add_argument("--warmup", type=int, default=10, help="flows before measuring")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--key-size", type=int, default=3072,
                        help="broker's SP RSA key (SpidConfig default 3072; minimum 2048)")
    parser.add_argument("--same-site", action="store_true",
                        help="POST the ACS with all the broker's cookies (IdP on our site)")
    parser.add_argument("--park", action="store_true",
                        help="POST the ACS cross-site without any cookie (a browser that "
                             "refused the return cookie): parked, then resumed as a GET")
    parser.add_argument("--steps", type=int, default=0, metavar="N",
                        help="after the run, N sequential flows with each request's server CPU")
    parser.add_argument("--profile-broker", type=Path, metavar="FILE",
                        help="run the broker under py-spy (raw folded stacks to FILE)")
    parser.add_argument("--profile-args", default="-r 250",
                        help="more py-spy record options, e.g. '-r 250 --gil'")
    parser.add_argument("--broker-cpus", metavar="LIST",
                        help="run the broker under 'taskset -c LIST' (e.g. 0): the event loop "
                             "and the worker threads on one core, as README's operations "
                             "section recommends; the IdP and this script stay unpinned")
    parser.add_argument("--show-logs", action="store_true", help="print the servers' log tails")
    parser.add_argument("--eidas", action="store_true",
                        help="an eIDAS login instead: the test IdP plays FICEP, the broker "
                             "sends the request with the SPID SP (eidas.schmidt, no codice "
                             "fiscale, minimum attribute set)")
    args = parser.parse_args()
    if args.logins < 1 or args.concurrency < 1:
        parser.error("--logins and --concurrency must be positive")

    with tempfile.TemporaryDirectory(prefix="spid-bench-") as tmpdir:
        tmp = Path(tmpdir)
        global USER, HINT
        if args.eidas:
            USER, HINT = "eidas.schmidt", "eidas"
        config, idp_dir = write_config(tmp, args.key_size, args.eidas)
        bport, iport = free_port(), free_port()
        broker, idp = f"http://127.0.0.1:{bport}", f"http://127.0.0.1:{iport}"
        procs: list[Proc] = []
        try:
            pin = ["taskset", "-c", args.broker_cpus] if args.broker_cpus else []
            procs.append(launch("broker", [*pin, sys.executable, "-m", "broker.cli.main", "serve",
                                           "--config", str(config), "--port", str(bport)],
                                tmp, f"{broker}/.well-known/openid-configuration"))
            procs.append(launch("idp", [sys.executable, "-m", "providers.saml.testidp",
                                        "--port", str(iport),
                                        "--sp-metadata", f"{broker}/spid/metadata",
                                        "--data", str(tmp / "testidp"),
                                        "--write-metadata", str(idp_dir / "test-idp.xml"),
                                        "--profile", "eidas" if args.eidas else "spid"],
                                tmp, f"{idp}/metadata"))
            if args.same_site and args.park:
                parser.error("--same-site and --park exclude each other")
            cross = "same-site" if args.same_site else "park" if args.park else "cross-site"
            warm, _ = asyncio.run(drive(broker, idp, args.warmup, 1, cross))
            if warm.errors:
                raise SystemExit(f"warm-up failed: {warm.errors[0]}")
            bpid, ipid = procs[0].popen.pid, procs[1].popen.pid
            b0, i0, own0 = cpu_seconds(bpid), cpu_seconds(ipid), time.process_time()
            threads0 = thread_cpu(bpid)
            switches0 = context_switches(bpid)
            sys0 = system_seconds(bpid)
            load = os.getloadavg()[0]
            spy = attach_profiler(bpid, args) if args.profile_broker else None
            totals, wall = asyncio.run(drive(broker, idp, args.logins, args.concurrency, cross))
            if spy is not None:
                detach_profiler(spy)
            bcpu, icpu = cpu_seconds(bpid) - b0, cpu_seconds(ipid) - i0
            threads1 = thread_cpu(bpid)
            switches = context_switches(bpid) - switches0
            bsys = system_seconds(bpid) - sys0
            own = time.process_time() - own0
            steps = None
            if args.steps:
                steps, _ = asyncio.run(drive(broker, idp, args.steps, 1, cross,
                                             {broker: bpid, idp: ipid}))
        finally:
            for proc in reversed(procs):
                stop(proc)
            if args.show_logs:
                for proc in procs:
                    print(f"--- {proc.name} log ---\n{proc.log.read_text()[-4000:]}")

    ok = len(totals.flows)
    if not ok:
        raise SystemExit(f"no flow succeeded: {totals.errors[:3]}")
    per_b, per_i = 1000 * bcpu / ok, 1000 * icpu / ok
    kind = "eIDAS (FICEP)" if args.eidas else "SPID"
    print(f"Varco {kind} login bench: {os.cpu_count()} cores (load {load:.2f} at start), "
          f"1 broker process{f' on CPU {args.broker_cpus}' if args.broker_cpus else ''} "
          f"+ 1 test IdP process, SP key RSA-{args.key_size}, "
          f"concurrency {args.concurrency}, ACS POST {cross}")
    print("| flows | errors | flows/s | p50 flow | p99 flow | broker CPU/login "
          "| IdP CPU/login | load generator CPU/login |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {ok} | {len(totals.errors)} | {ok / wall:.1f} | {pct(totals.flows, 0.5):.1f} ms "
          f"| {pct(totals.flows, 0.99):.1f} ms | {per_b:.2f} ms | {per_i:.2f} ms "
          f"| {1000 * own / ok:.2f} ms |")
    loop_ns = threads1.get(str(bpid), 0) - threads0.get(str(bpid), 0)
    other_ns = sum(v - threads0.get(k, 0) for k, v in threads1.items() if k != str(bpid))
    print(f"Broker threads (schedstat, threads alive at the end): event loop "
          f"{loop_ns / 1e6 / ok:.2f} ms/login, other threads {other_ns / 1e6 / ok:.2f} ms/login; "
          f"in the kernel (system time) {1000 * bsys / ok:.2f} ms/login; "
          f"{switches / ok:.0f} context switches/login.")
    wait = totals.broker_wait + totals.idp_wait
    print(f"\nWaiting on the broker {100 * totals.broker_wait / wait:.0f}% of request time, "
          f"on the IdP {100 * totals.idp_wait / wait:.0f}%.")
    verdict = "MET" if per_b <= TARGET_MS else "NOT MET"
    print(f"Target broker share <= {TARGET_MS:.0f} ms CPU per login: {verdict} "
          f"({per_b:.2f} ms).")
    if steps is not None and steps.step_n:
        print(f"\nServer CPU per request, {args.steps} sequential flows (schedstat):")
        print("| request | per flow | CPU/request | of which event loop | CPU/flow |")
        print("|---|---|---|---|---|")
        flows = max(1, len(steps.flows))
        for step, cpu in steps.step_cpu.items():
            n = steps.step_n[step]
            loop = steps.step_loop.get(step, 0.0)
            print(f"| {step} | {n / flows:.1f} | {1000 * cpu / n:.2f} ms "
                  f"| {1000 * loop / n:.2f} ms | {1000 * cpu / flows:.2f} ms |")
    for err in totals.errors[:3]:
        print(f"error: {err}")
    if args.profile_broker:
        print(f"py-spy profile of the measured run: {args.profile_broker}")
    return 0 if not totals.errors else 1


if __name__ == "__main__":
    sys.exit(main())
