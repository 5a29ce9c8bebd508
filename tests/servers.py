"""Real local servers that play the outside world in tests: an HTTP endpoint (the SMS gateway, a
bureau system's webhook receiver) and an SMTP server (the mail relay), each recording what it
received."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

from fengqiao.devstack import free_port


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class HttpRecorder:
    """Answers each POST with the next status of `script` (then `default`); `hang` makes it
    accept the request and never answer."""

    default: int = 200
    script: list[int] = field(default_factory=list)
    answer: dict = field(default_factory=lambda: {"code": "0"})
    hang: bool = False
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        recorder = self
        self._release = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True

            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if recorder.hang:
                    recorder._release.wait(60)
                    return
                recorder.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                status = recorder.script.pop(0) if recorder.script else recorder.default
                payload = json.dumps(recorder.answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, n: int = 1, timeout: float = 15.0, where=lambda r: True) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = [r for r in self.received if where(r)]
            if len(got) >= n:
                return got
            time.sleep(0.05)
        raise AssertionError(f"expected {n} requests, got {len([r for r in self.received if where(r)])}")

    def close(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()


class _Collect:
    def __init__(self, sink: list) -> None:
        self.sink = sink

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.split("@")[0].endswith("nosuchuser"):  # a mailbox that does not exist
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.sink.append(
            (
                envelope.rcpt_tos,
                message_from_bytes(envelope.original_content or envelope.content, policy=policy.default),
            )
        )
        return "250 OK"


class SmtpRecorder:
    """A real SMTP server (aiosmtpd) keeping every message it accepts, parsed."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self.port = free_port()
        self.controller = Controller(_Collect(self.messages), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def wait_for(self, n: int = 1, timeout: float = 15.0, where=lambda m: True):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = [m for m in self.messages if where(m)]
            if len(got) >= n:
                return got
            time.sleep(0.05)
        raise AssertionError(f"expected {n} messages, got {len(self.messages)}")

    def close(self) -> None:
        self.controller.stop()
