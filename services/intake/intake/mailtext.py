"""Reading untrusted e-mail: MIME parsing and HTML-to-text, bounded in size and time.

Everything here may meet hostile input (the station mailboxes are open to the internet), and the
standard library's parsers are not linear on every input: on Python 3.11 `HTMLParser.close()`
takes 23 s on 100 KB of `<a b='`, a 460 KB Subject of encoded words 25 s, a From header of 20,000
addresses 11 s, a message of 20,000 MIME parts 15 s, and 3,000 nested multiparts raise
RecursionError. So:

- cheap linear checks on the raw bytes refuse oversized headers and too many parts before any
  parsing (`precheck`);
- headers are decoded from a truncated raw value, never parsed whole;
- the HTML parser is fed a capped amount and never asked to `close()` (the quadratic part): the
  unfinished tail is stripped with a regex that cannot backtrack;
- the whole parse runs in a separate process (`MailReader`) under a time limit. A thread could
  not be stopped when the limit passes and, holding the GIL inside `re`, would still stall the
  event loop; a worker process can be killed and replaced.

This module imports only the standard library: it is what the worker process loads."""

from __future__ import annotations

import asyncio
import concurrent.futures
import html
import multiprocessing
import re
from dataclasses import dataclass
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage, MIMEPart
from email.parser import BytesParser
from email.utils import getaddresses
from html.parser import HTMLParser

MAX_HEADER_BYTES = 64 * 1024  # the top-level header block; real mail has a few KB
MAX_PARTS = 100  # MIME parts (counted as Content-Type lines); real mail has a handful
MAX_HTML_CHARS = 512 * 1024  # HTML fed to the parser; the text we keep is 5,000 characters
MAX_TEXT_CHARS = 5000
MAX_SUBJECT_RAW = 2000  # raw Subject characters decoded; we keep 200
MAX_FROM_RAW = 1000
MAX_MESSAGE_ID_RAW = 16 * 1024

_SKIPPED = {"script", "style", "template", "noscript", "head", "title"}
_BLOCK = {
    "p",
    "div",
    "br",
    "li",
    "tr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "pre",
    "table",
    "ul",
    "ol",
    "section",
    "article",
    "hr",
}
# `<` followed by anything but `<` or `>`, then an optional `>`: a match can never fail once it has
# started, so there is no backtracking and the substitution is linear (unlike `<[^>]+>`).
_TAG_TAIL = re.compile(r"<[^<>]*>?")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # keeps \t and \n
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_CONTENT_TYPE_LINE = re.compile(rb"(?im)^content-type[ \t]*:")
_HEADER_END = re.compile(rb"\r?\n\r?\n")


class MailUnreadable(Exception):
    """The message cannot be read within our bounds; `reason` is a short code for metrics and the
    SMTP answer (never personal data)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# -- HTML -----------------------------------------------------------------------------------------


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._skipping: list[str] = []

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in _SKIPPED:
            self._skipping.append(tag)
        elif tag in _BLOCK:
            self.out.append("\n")

    def handle_startendtag(self, tag: str, attrs) -> None:
        if tag in _BLOCK:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            if tag in self._skipping:  # unbalanced end tags of other elements are ignored
                while self._skipping and self._skipping.pop() != tag:
                    pass
        elif tag in _BLOCK:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.out.append(data)


def html_to_text(markup: str, limit: int = MAX_HTML_CHARS) -> str:
    """The readable text of an HTML document: script and style dropped, entities decoded, tags
    removed. At most `limit` characters of markup are read."""
    parser = _TextExtractor()
    parser.feed(markup[:limit])
    # An unfinished construct (an unclosed tag, comment or quote) is left in `rawdata`. `close()`
    # would re-scan it once per character; strip it linearly instead.
    tail = parser.rawdata
    text = "".join(parser.out)
    if tail and not parser._skipping:
        text += html.unescape(_TAG_TAIL.sub(" ", tail))
    return text


# -- text clean-up --------------------------------------------------------------------------------


def clean_text(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """Body text as stored: control characters (NUL is refused by PostgreSQL) removed, runs of
    spaces and blank lines collapsed."""
    text = text[: limit * 4].replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()[:limit]


def one_line(text: str, limit: int) -> str:
    """A header value as one line: CR, LF and every other control character become spaces, so a
    decoded Subject cannot carry a header break into anything that reuses it."""
    return " ".join(_CONTROL.sub(" ", text.replace("\r", " ").replace("\n", " ")).split())[:limit]


# -- MIME -----------------------------------------------------------------------------------------


def precheck(raw: bytes) -> None:
    """Linear checks before any parsing: the header block and the number of parts are bounded."""
    end = _HEADER_END.search(raw, 0, MAX_HEADER_BYTES + 4)
    if end is None and len(raw) > MAX_HEADER_BYTES:
        raise MailUnreadable("headers_too_large")
    if len(_CONTENT_TYPE_LINE.findall(raw)) > MAX_PARTS:
        raise MailUnreadable("too_many_parts")


def _decode_header_value(raw: str, limit: int) -> str:
    raw = raw[:limit]
    try:
        return str(make_header(decode_header(raw)))
    except (LookupError, UnicodeError, ValueError):  # an unknown charset in an encoded word
        parts = []
        for chunk, charset in decode_header(raw):
            if isinstance(chunk, bytes):
                parts.append(_decode_bytes(chunk, charset))
            else:
                parts.append(chunk)
        return "".join(parts)


_CHARSET_ALIASES = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "cp936": "gb18030", "euc-cn": "gb18030"}


def _decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode with the declared charset (GB2312 and GBK read as their superset GB18030, which mail
    programs actually send); an unknown or wrong charset falls back to UTF-8, then GB18030."""
    name = (charset or "").strip().lower()
    name = _CHARSET_ALIASES.get(name, name)
    if name:
        try:
            return data.decode(name)
        except (LookupError, UnicodeError):
            pass
    for fallback in ("utf-8", "gb18030"):
        try:
            return data.decode(fallback)
        except UnicodeError:
            continue
    return data.decode("utf-8", errors="replace")


def _raw_header(message: EmailMessage, name: str) -> str:
    for key, value in message.raw_items():  # as stored: no policy parsing of a huge value
        if key.lower() == name:
            return str(value)
    return ""


def _part_text(part: MIMEPart) -> str:
    payload = part.get_payload(decode=True) or b""  # transfer decoding only; tolerant of bad base64
    # With decode=True a multipart part gives None (b"" above) and any other part its bytes, never a Message.
    assert isinstance(payload, bytes), "decoded payload of a non-multipart part"
    return _decode_bytes(payload, part.get_content_charset())


def read_mail(raw: bytes) -> dict:
    """Parse one message; returns plain values (it crosses a process boundary):
    subject, text, from_addresses (at most 2: more than one means no reply address), message_id."""
    precheck(raw)
    try:
        message = BytesParser(policy=policy.default).parsebytes(raw)
        subject = one_line(_decode_header_value(_raw_header(message, "subject"), MAX_SUBJECT_RAW), 200)
        from_raw = _decode_header_value(_raw_header(message, "from"), MAX_FROM_RAW)
        addresses = [a for _, a in getaddresses([one_line(from_raw, MAX_FROM_RAW)]) if a][:2]
        message_id = one_line(_raw_header(message, "message-id"), MAX_MESSAGE_ID_RAW)
        part = message.get_body(preferencelist=("plain", "html"))
        text = ""
        if part is not None:
            text = _part_text(part)
            if part.get_content_type() == "text/html":
                text = html_to_text(text)
    except RecursionError as exc:
        raise MailUnreadable("nested_too_deep") from exc
    return {"subject": subject, "text": clean_text(text), "from_addresses": addresses, "message_id": message_id}


# -- the worker process ---------------------------------------------------------------------------


def _warm_up() -> bool:
    return True


@dataclass
class MailReader:
    """Runs `read_mail` in one worker process, one message at a time, each within `timeout_s`.
    A message that takes longer gets its worker killed and replaced (refused as too complex);
    waiting behind other messages is bounded by `queue_timeout_s`."""

    timeout_s: float = 5.0
    queue_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._warm = False
        self._turn = asyncio.Semaphore(1)

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            # spawn, not fork: the service process has threads (fork would copy held locks)
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn")
            )
        return self._pool

    async def start(self) -> None:
        """Start the worker now, so its start-up (a new interpreter importing the service's main
        module: a second or two) is not counted against a message's time limit."""
        if not self._warm:
            loop = asyncio.get_running_loop()
            await asyncio.wait_for(loop.run_in_executor(self._executor(), _warm_up), self.queue_timeout_s)
            self._warm = True

    def _replace_worker(self) -> None:
        pool, self._pool = self._pool, None
        self._warm = False
        if pool is None:
            return
        kill = getattr(pool, "kill_workers", None)  # Python 3.14
        if kill is not None:
            kill()
        else:
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.kill()
        pool.shutdown(wait=False, cancel_futures=True)

    async def read(self, raw: bytes) -> dict:
        """MailUnreadable("too_complex") when the time limit passes, ("busy") when the queue is too
        long; MailUnreadable from the parser itself."""
        precheck(raw)  # cheap, and spares the worker what it would refuse anyway
        try:
            await asyncio.wait_for(self._turn.acquire(), self.queue_timeout_s)
        except TimeoutError:
            raise MailUnreadable("busy") from None
        try:
            try:
                await self.start()  # after a replaced worker: its successor starts outside the limit
            except (TimeoutError, concurrent.futures.process.BrokenProcessPool):
                self._replace_worker()
                raise MailUnreadable("busy") from None
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(self._executor(), read_mail, raw)
            try:
                return await asyncio.wait_for(future, self.timeout_s)
            except TimeoutError:
                self._replace_worker()
                raise MailUnreadable("too_complex") from None
            except concurrent.futures.process.BrokenProcessPool:
                self._replace_worker()  # the worker died (e.g. out of memory on this message)
                raise MailUnreadable("too_complex") from None
        finally:
            self._turn.release()

    def close(self) -> None:
        self._replace_worker()
