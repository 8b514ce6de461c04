"""The shipped nginx files are valid nginx (``nginx -t``) with real paths filled in."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from providers.cns import pki
from providers.cns.nginx_conf import snippets_dir
from tests.cns.nginx_runner import nginx_binary

pytestmark = pytest.mark.integration


def test_example_cns_conf_passes_nginx_t(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    ca = pki.make_ca("t", now)
    for host in ("login.example.it", "cns.example.it"):
        pki.make_server(host, ca, now).write(tmp_path / f"{host}.pem", tmp_path / f"{host}.key")
    text = (snippets_dir() / "cns.conf").read_text()
    text = text.replace("/etc/ssl/varco/", f"{tmp_path}/")
    text = text.replace("/etc/varco/nginx/", f"{snippets_dir()}/")
    text = text.replace("listen 443 ssl;", "listen 127.0.0.1:1443 ssl;")
    assert "/etc/" not in text.replace("# ", "").split("upstream", 1)[1]
    (tmp_path / "temp").mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"""pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log;
events {{}}
http {{
    access_log off;
    client_body_temp_path {tmp_path}/temp;
    proxy_temp_path {tmp_path}/temp;
    fastcgi_temp_path {tmp_path}/temp;
    uwsgi_temp_path {tmp_path}/temp;
    scgi_temp_path {tmp_path}/temp;
    include {tmp_path}/varco.conf;
}}
""")
    (tmp_path / "varco.conf").write_text(text)
    result = subprocess.run([nginx_binary(), "-t", "-p", str(tmp_path), "-e",
                             str(tmp_path / "error.log"), "-c", str(conf)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr
