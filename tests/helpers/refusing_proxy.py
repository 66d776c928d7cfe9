"""An HTTP proxy that refuses every request, for the "proxy refused" messages of the installers."""
from __future__ import annotations

import http.server


class RefusingProxy(http.server.BaseHTTPRequestHandler):
    """A proxy that asks every request for credentials it never accepts."""

    def _refuse(self) -> None:
        self.send_response(407, "Proxy Authentication Required")
        self.send_header("Proxy-Authenticate", 'Basic realm="test"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_CONNECT = _refuse

    def log_message(self, *args) -> None:
        pass
