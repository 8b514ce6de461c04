"""Several ``varco serve`` processes behind a real nginx, sharing one data folder and Redis.

The production shape in miniature: durable state in the shared SQLite folder, everything
hot in Redis, nginx round-robin in front (``X-Upstream`` says which process answered).
Used by the scale-out tests and by ``bench/scaleout_bench.py``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]  # (host, port)
        return port


def write_config(folder: Path, issuer: str, *, ephemeral: str = "redis",
                 policies: Path | None = None) -> Path:
    """A broker config for the cluster: demo clients and PIN users, shared data folder."""
    config = folder / "varco.yaml"
    config.write_text(
        f"issuer: {issuer}\ndata_dir: {folder / 'data'}\n"
        f"clients: {ROOT / 'config/clients.demo.yaml'}\n"
        f"policies_dir: {policies or ROOT / 'policies'}\nmappings_dir: {ROOT / 'mappings'}\n"
        "demo_rp: true\nproviders:\n  pin:\n    demo_users: true\n"
        f"store:\n  ephemeral: {ephemeral}\n  redis_prefix: 'cluster:'\n")
    return config


@dataclass
class BrokerProcess:
    config: Path
    port: int
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> BrokerProcess:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "broker.cli.main", "serve", "--config", str(self.config),
                 "--port", str(self.port)], cwd=ROOT, env=self.env, stdout=out,
                stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"broker on {self.port} did not start:\n"
                                   + self.log.read_text(errors="replace")[-3000:])
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: a crash, nothing graceful."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM: uvicorn's graceful shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def nginx_conf(prefix: Path, port: int, upstreams: list[int]) -> Path:
    servers = "\n".join(f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;"
                        for p in upstreams)
    temp = "\n".join(f"  {kind}_temp_path {prefix / kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = prefix / "nginx.conf"
    conf.write_text(f"""
daemon off;
worker_processes 1;
pid {prefix / 'nginx.pid'};
error_log {prefix / 'error.log'} warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  # Bodies and answers in memory: a SAML POST never needs nginx's temp files.
  client_body_buffer_size 1m;
  proxy_buffers 16 64k;
  proxy_buffer_size 64k;
{temp}
  upstream varco {{
{servers}
    keepalive 32;
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://varco;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_next_upstream error timeout http_502;
      add_header X-Upstream $upstream_addr always;
    }}
  }}
}}
""")
    return conf


@dataclass
class Cluster:
    """``n`` broker processes and nginx; ``url`` is the load balancer (the issuer)."""

    folder: Path
    redis_url: str | None
    n: int = 2
    ephemeral: str = "redis"
    policies: Path | None = None
    port: int = field(default_factory=free_port)
    brokers: list[BrokerProcess] = field(default_factory=list)
    nginx: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Cluster:
        self.folder.mkdir(parents=True, exist_ok=True)
        config = write_config(self.folder, self.url, ephemeral=self.ephemeral,
                              policies=self.policies)
        env = {**os.environ, "VARCO_SECRET_KEY": "cluster-test-secret-key-0123456789abcdef"}
        if self.redis_url:
            env["VARCO_REDIS_URL"] = self.redis_url
        # One after the other: the first creates keys and demo users, the others load them.
        for i in range(self.n):
            self.brokers.append(BrokerProcess(config, free_port(), env,
                                              self.folder / f"broker{i}.log").start())
        prefix = self.folder / "nginx"
        prefix.mkdir(exist_ok=True)
        conf = nginx_conf(prefix, self.port, [b.port for b in self.brokers])
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self.nginx = subprocess.Popen([binary, "-p", str(prefix), "-c", str(conf)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self.nginx.poll() is not None or time.monotonic() > deadline:
                self.stop()
                err = prefix / "error.log"
                raise RuntimeError("nginx did not start: " + (err.read_text()
                                                              if err.exists() else ""))
            time.sleep(0.05)

    def by_port(self, port: int) -> BrokerProcess:
        return next(b for b in self.brokers if b.port == port)

    def stop(self) -> None:
        if self.nginx is not None and self.nginx.poll() is None:
            self.nginx.terminate()
            self.nginx.wait(timeout=10)
        for broker in self.brokers:
            broker.stop()


def upstream_port(response: httpx.Response) -> int:
    """The broker process nginx sent this request to (the last one tried)."""
    return int(response.headers["x-upstream"].split(",")[-1].strip().rsplit(":", 1)[1])
