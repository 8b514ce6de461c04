"""An OCSP responder for the tests: plain HTTP on 127.0.0.1, answers built with
``cryptography``'s OCSP response builder and signed by a delegated responder certificate
(or any key the test chooses, to check that the broker refuses a forged answer)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from providers.cns.pki import Issued


@dataclass
class OcspResponder:
    """Answers for ``issuer``'s certificates: ``revoked`` serials are revoked, others good."""

    issuer: Issued
    signer: Issued  # the issuer itself, a delegated responder, or a stranger (forgery)
    now: datetime
    revoked: set[int] = field(default_factory=set)
    requests: int = 0
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/ocsp"

    def answer(self, body: bytes) -> bytes:
        request = ocsp.load_der_ocsp_request(body)
        self.requests += 1
        status = (ocsp.OCSPCertStatus.REVOKED if request.serial_number in self.revoked
                  else ocsp.OCSPCertStatus.GOOD)
        # A CertID-only builder needs the certificate; rebuild a stand-in with that serial.
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            issuer_name_hash=request.issuer_name_hash, issuer_key_hash=request.issuer_key_hash,
            serial_number=request.serial_number, algorithm=hashes.SHA1(), cert_status=status,
            this_update=self.now - timedelta(minutes=5),
            next_update=self.now + timedelta(hours=1),
            revocation_time=(self.now - timedelta(hours=1)
                             if status == ocsp.OCSPCertStatus.REVOKED else None),
            revocation_reason=(x509.ReasonFlags.key_compromise
                               if status == ocsp.OCSPCertStatus.REVOKED else None))
        builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, self.signer.cert)
        if self.signer.cert != self.issuer.cert:
            builder = builder.certificates([self.signer.cert])
        try:
            nonce = request.extensions.get_extension_for_class(x509.OCSPNonce)
            builder = builder.add_extension(nonce.value, critical=False)
        except x509.ExtensionNotFound:
            pass
        response = builder.sign(self.signer.key, hashes.SHA256())
        return response.public_bytes(serialization.Encoding.DER)

    def start(self) -> OcspResponder:
        responder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = responder.answer(self.rfile.read(length))
                self.send_response(200)
                self.send_header("Content-Type", "application/ocsp-response")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
