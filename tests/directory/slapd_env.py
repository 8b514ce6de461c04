"""A real OpenLDAP slapd for the tests: LDAPS on 127.0.0.1, a test CA and server
certificate made with ``cryptography``, Varco's schema and example LDIF, and a bind
account that can only read (ACLs). Everything lives in a temp folder."""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from broker.paths import project_dir

BASE = "dc=varco,dc=example"
READER_DN = f"cn=varco-reader,{BASE}"
ADMIN_DN = f"cn=admin,{BASE}"
SLAPD = shutil.which("slapd") or "/usr/sbin/slapd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]  # (host, port)
        return port


def _cert(subject: str, key, issuer_key=None, issuer_name=None, *, ca: bool) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer_name or name).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


def _pem(obj: x509.Certificate | ec.EllipticCurvePrivateKey) -> bytes:
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM)
    return obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@dataclass
class Slapd:
    folder: Path
    port: int
    ca_file: Path
    reader_password: str
    admin_password: str
    plain_port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ldaps://127.0.0.1:{self.port}"

    @property
    def plain_url(self) -> str:
        """``ldap://``: usable only after StartTLS (``security ssf=128``)."""
        return f"ldap://127.0.0.1:{self.plain_port}"

    def start(self) -> None:
        listen = f"{self.url}/ {self.plain_url}/"
        self.proc = subprocess.Popen(
            [SLAPD, "-f", str(self.folder / "slapd.conf"), "-h", listen, "-d", "0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                assert self.proc.stderr is not None  # stderr=PIPE
                raise RuntimeError(f"slapd exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("slapd did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def add_ldif(self, text: str) -> None:
        """Load entries offline with slapadd (slapd must be stopped)."""
        assert self.proc is None, "stop slapd before slapadd"
        path = self.folder / f"extra-{time.monotonic_ns()}.ldif"
        path.write_text(text, encoding="utf-8")
        subprocess.run(["slapadd", "-f", str(self.folder / "slapd.conf"), "-l", str(path)],
                       check=True, capture_output=True)


def make_slapd(folder: Path) -> Slapd:
    """Write certificates, slapd.conf and the data (schema + example LDIF + reader)."""
    import secrets

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "db").mkdir()
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("Varco test CA", ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _cert("127.0.0.1", key, ca_key, ca.subject, ca=False)
    (folder / "ca.pem").write_bytes(_pem(ca))
    (folder / "server.pem").write_bytes(_pem(cert))
    (folder / "server.key").write_bytes(_pem(key))
    reader_pw, admin_pw = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    hashed = subprocess.run(["slappasswd", "-s", reader_pw], check=True, capture_output=True,
                            text=True).stdout.strip()
    schema = project_dir("config") / "ldap" / "varco.schema"
    (folder / "slapd.conf").write_text(f"""\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include {schema}
pidfile {folder}/slapd.pid
argsfile {folder}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCACertificateFile {folder}/ca.pem
TLSCertificateFile {folder}/server.pem
TLSCertificateKeyFile {folder}/server.key
security ssf=128

database mdb
maxsize 33554432
suffix "{BASE}"
rootdn "{ADMIN_DN}"
rootpw {admin_pw}
directory {folder}/db

# The broker's account reads, nothing more; nobody else sees anything.
access to attrs=userPassword
  by anonymous auth
  by * none
access to *
  by dn.exact="{READER_DN}" read
  by * none
""")
    subprocess.run(["slapadd", "-f", str(folder / "slapd.conf"), "-l",
                    str(project_dir("config") / "ldap" / "example.ldif")],
                   check=True, capture_output=True)
    reader = folder / "reader.ldif"
    reader.write_text(f"""dn: {READER_DN}
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: varco-reader
userPassword: {hashed}
""")
    subprocess.run(["slapadd", "-f", str(folder / "slapd.conf"), "-l", str(reader)],
                   check=True, capture_output=True)
    return Slapd(folder, free_port(), folder / "ca.pem", reader_pw, admin_pw,
                 plain_port=free_port())
