"""Run a real nginx (the Debian package) from a temp folder, in the foreground, and stop it."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from providers.cns.nginx_conf import NginxLayout, write


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists()
                                      else None)
    if not found:
        raise RuntimeError("nginx is not installed (tests/run.sh installs the Debian package)")
    return found


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class Nginx:
    """One nginx master process serving ``layout``."""

    def __init__(self, layout: NginxLayout):
        self.layout = layout
        self.conf = write(layout, layout.prefix / "nginx.conf")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Nginx:
        check = subprocess.run([nginx_binary(), "-t", "-p", str(self.layout.prefix), "-e",
                                str(self.layout.prefix / "error.log"), "-c",
                                str(self.conf)], capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            raise RuntimeError(f"nginx -t failed:\n{check.stderr}")
        self.proc = subprocess.Popen(
            [nginx_binary(), "-p", str(self.layout.prefix), "-e",
             str(self.layout.prefix / "error.log"), "-c", str(self.conf)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ports = [self.layout.card_port] + ([self.layout.main_port] if self.layout.main_port
                                           else [])
        deadline = time.monotonic() + 15
        while not all(_listening(self.layout.host, p) for p in ports):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("nginx did not start:\n" + self.error_log())
            time.sleep(0.05)
        # Listening is not enough: another process may hold a port free_port() chose, and
        # then this nginx fails to bind and exits. It must still run, without bind errors.
        time.sleep(0.1)
        if self.proc.poll() is not None or "bind()" in self.error_log():
            self.stop()
            raise RuntimeError("nginx did not start:\n" + self.error_log())
        return self

    def error_log(self) -> str:
        path = self.layout.prefix / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None
