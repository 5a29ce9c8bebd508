"""The dev stack's stand-ins for the SMS gateway and the mail relay: real HTTP and SMTP servers
on local ports that write what notify sends into .fengqiao/outbox/ (sms.jsonl, mail/*.eml), so
`make run` shows the citizens' messages without a provider. Never used in production, where
SMS_GATEWAY_URL and NOTIFY_SMTP_HOST point at the real ones."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from fengqiao.devstack import free_port


class DevOutbox:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        (folder / "mail").mkdir(parents=True, exist_ok=True)
        self.sms_file = folder / "sms.jsonl"
        lock = threading.Lock()
        sms_file = self.sms_file

        class Gateway(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                try:
                    record = json.loads(body)
                except ValueError:
                    record = {"raw": body.decode(errors="replace")}
                record["received_at"] = datetime.now(UTC).isoformat()
                with lock, sms_file.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(record, ensure_ascii=False) + "\n")
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"code":"0"}')

        self._http = ThreadingHTTPServer(("127.0.0.1", free_port()), Gateway)
        self.sms_url = f"http://127.0.0.1:{self._http.server_address[1]}/sms"
        mail_dir = folder / "mail"

        class Relay:
            async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
                stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
                # aiosmtpd sets the message's bytes before it calls handle_DATA (`content` is the same
                # bytes, decode_data being off)
                assert envelope.original_content is not None
                (mail_dir / f"{stamp}.eml").write_bytes(envelope.original_content)
                return "250 OK"

        self.smtp_port = free_port()
        self._smtp = Controller(Relay(), hostname="127.0.0.1", port=self.smtp_port)

    def start(self) -> dict[str, str]:
        """Start both; the environment that points notify at them."""
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        self._smtp.start()
        return {
            "SMS_GATEWAY_URL": self.sms_url,
            "NOTIFY_SMTP_HOST": "127.0.0.1",
            "NOTIFY_SMTP_PORT": str(self.smtp_port),
            "NOTIFY_SMTP_SECURITY": "none",
            "NOTIFY_MAIL_FROM": "noreply@fengqiao.localhost",
        }

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._smtp.stop()
