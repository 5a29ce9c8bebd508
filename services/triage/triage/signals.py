"""The urgent-signal layer: what a 110 desk must act on now, written as data. Pure.

The signals live in `data/signals/urgent.toml` (one table per kind of situation the public 110
rules say needs an immediate response: crimes and violence in progress, weapons, threats,
self-harm, missing vulnerable people, fraud in progress, fire, gas, drowning, people trapped,
injury accidents, domestic violence, crowds), each with its cue patterns, held-in examples and
counter-examples. A cue makes an item urgent unless its context says the danger is not present:

- **negation** just before the cue in its clause (没有人受伤, 未发现明火, 防溺水);
- the **time** it is told in: the last time word before the cue in its sentence (上个月, 去年,
  前几天 are past; 今天, 刚才, 还在 are present); for a lasting state (a missing person) a present
  time after the cue wins (昨天走失，到现在还没找到);
- a **counter-signal** in the cue's sentence: an outcome (已经找到, 火已经灭了), a refusal
  (没有转钱, 直接挂了), an aftermath (立案, 追回, 赔偿), a hypothetical (如果, 万一),
  an inquiry (请问, 咨询), a suggestion (建议, 宣传), praise (感谢, 锦旗) or hearsay (新闻,
  听说); praise, suggestion and hearsay in the first sentence frame the whole message, unless the
  cue's sentence tells of the present.

A counter-signal lowers a cue only when no **present-danger cue** remains: a strong one in the
sentence (正在, 马上, 快来, 还在里面, 又来了) keeps the cue whatever else is said; a signal's own
(我家老人, for a missing person) outweighs an inquiry's wording. Every pattern runs on RE2, so
matching is linear in the text; context is evaluated once per sentence, and each cue stops at its
first live match.

A live hit's reason has the default rules' shape, `rule:urgency=urgent:<matched words>(<signal>#<cue>)`,
so the public stream carries `rule:urgency=urgent:<signal>#<cue>` and never the words. A hit the
context lowered is kept for staff as `signal:<signal>#<cue>:countered:<why>` (internal only)."""

from __future__ import annotations

import tomllib
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Protocol

import re2

from triage.rules import re2_options

SIGNALS_FILE = "data/signals/urgent.toml"
MAX_SHOWN = 16  # characters of the matched words shown to staff in a reason
# RE2 programs can be far larger than a station rule's (MAX_PROGRAM_SIZE) here: the set is fixed,
# reviewed and measured on a 5,000-character hostile item by the tests.
MAX_SIGNAL_PROGRAM = 20_000
_SENTENCE_END = frozenset("。!?;！？；\n")
_CLAUSE_END = _SENTENCE_END | frozenset(",，、:： ")
# Counter-signals in the cue's own sentence, in the order a reason names them.
SENTENCE_COUNTERS = (
    "past",
    "resolved",
    "refused",
    "aftermath",
    "hypothetical",
    "inquiry",
    "suggestion",
    "praise",
    "hearsay",
)
# Counter-signals that frame the whole message when its first sentence carries them.
FRAMING_COUNTERS = ("suggestion", "praise", "hearsay")


class Match(Protocol):
    def start(self) -> int: ...
    def end(self) -> int: ...
    def group(self, index: int = 0) -> str: ...


class Program(Protocol):
    """What this module uses of a compiled RE2 program (google-re2 ships no type information)."""

    def search(self, text: str) -> Match | None: ...
    def finditer(self, text: str) -> Iterator[Match]: ...


def compile_signal_pattern(pattern: str) -> Program:
    """An RE2 program for a built-in signal pattern; ValueError if RE2 cannot run it or it is too big."""
    try:
        program = re2.compile(pattern, re2_options())
    except re2.error:
        raise ValueError(f"signal pattern RE2 cannot compile: {pattern!r}") from None
    if program.programsize > MAX_SIGNAL_PROGRAM:
        raise ValueError(f"signal pattern too large ({program.programsize}): {pattern!r}")
    compiled: Program = program
    return compiled


@dataclass(frozen=True)
class Signal:
    id: str
    name: str
    cues: tuple[Program, ...]
    needs: Program | None = None  # another cue the message must also carry (an injury for a crash)
    exclude: Program | None = None  # words around a cue that make it something else (充电枪, 气炸了)
    present: Program | None = None  # this signal's own present cues: they outweigh an inquiry's wording
    ongoing: bool = False  # a state that lasts (missing): a present time after the cue outweighs a past one
    examples: tuple[str, ...] = ()
    counter_examples: tuple[str, ...] = ()


@dataclass(frozen=True)
class SignalHit:
    signal: str
    cue: int  # 1-based, the cue's public number within its signal
    matched: str
    countered: str | None = None  # None: live; else the context that lowered it

    @property
    def public_id(self) -> str:
        return f"{self.signal}#{self.cue}"

    @property
    def reason(self) -> str:
        """Staff's reason: the default rules' shape, so `engine.public_reason` keeps only the id."""
        shown = self.matched[:MAX_SHOWN].replace("(", "").replace(")", "").replace(":", "")
        if self.countered is None:
            return f"rule:urgency=urgent:{shown}({self.public_id})"
        return f"signal:{self.public_id}:countered:{self.countered}"


@dataclass
class _Context:
    """One message's sentences and, per sentence, which counters and present cues it carries."""

    text: str
    starts: list[int]
    flags: dict[int, frozenset[str]] = field(default_factory=dict)
    times: dict[int, list[tuple[int, str]]] = field(default_factory=dict)


class SignalSet:
    def __init__(self, signals: tuple[Signal, ...], context: dict[str, Program], negation_window: int) -> None:
        self.signals = signals
        self.context = context
        self.negation_window = negation_window

    def hits(self, text: str) -> list[SignalHit]:
        """Every signal found in normalised text: at most one live hit per cue (its first), and the
        first countered one of a cue that has no live one."""
        ctx = _Context(text, _sentence_starts(text))
        found: list[SignalHit] = []
        for signal in self.signals:
            if signal.needs is not None and not self._live_match(ctx, signal.needs, signal.exclude):
                continue
            for number, cue in enumerate(signal.cues, 1):
                hit = self._cue_hit(ctx, signal, number, cue)
                if hit is not None:
                    found.append(hit)
        return found

    def urgent(self, text: str) -> list[SignalHit]:
        return [h for h in self.hits(text) if h.countered is None]

    # -- context ----------------------------------------------------------------------------

    def _cue_hit(self, ctx: _Context, signal: Signal, number: int, cue: Program) -> SignalHit | None:
        countered: SignalHit | None = None
        for m in cue.finditer(ctx.text):
            start, end = m.start(), m.end()
            if signal.exclude is not None and signal.exclude.search(_window(ctx.text, start, end)):
                continue
            why = self._counter(ctx, signal, start)
            if why is None:
                return SignalHit(signal.id, number, m.group(0))
            countered = countered or SignalHit(signal.id, number, m.group(0), why)
        return countered

    def _counter(self, ctx: _Context, signal: Signal, start: int) -> str | None:
        """Why the cue at `start` does not mean danger now, or None when it does."""
        if self._negated(ctx.text, start):
            return "negation"
        sentence = bisect_right(ctx.starts, start) - 1
        flags = self._flags(ctx, sentence)
        if "present_strong" in flags:
            return None
        part = _sentence(ctx, sentence)
        own = signal.present is not None and signal.present.search(part) is not None
        counters = [c for c in SENTENCE_COUNTERS if c in flags]
        if self._time(ctx, sentence, start - ctx.starts[sentence], signal.ongoing) != "past":
            counters = [c for c in counters if c != "past"]
        if sentence and "present" not in flags and not own:  # a thank-you letter, a news story...
            counters += [c for c in FRAMING_COUNTERS if c in self._flags(ctx, 0) and c not in counters]
        if own:  # 请问, 我家老人走丢了: the writer's own emergency, asked as a question
            counters = [c for c in counters if c != "inquiry"]
        return counters[0] if counters else None

    def _time(self, ctx: _Context, sentence: int, offset: int, ongoing: bool) -> str | None:
        """The time a cue at `offset` in its sentence is told in: the last time word before it
        (前年站在楼顶讨过薪，他现在又来 is past; 上个月被骗过，今天又让我转 is present); None
        when there is none before it. For a state that lasts, a present time after the cue wins
        (昨天走失，到现在还没找到)."""
        if sentence not in ctx.times:
            part = _sentence(ctx, sentence)
            marks = [(m.start(), "past") for m in self.context["past"].finditer(part)]
            marks += [(m.start(), "present") for m in self.context["present"].finditer(part)]
            ctx.times[sentence] = sorted(marks)
        marks = ctx.times[sentence]
        if ongoing and any(kind == "present" and pos > offset for pos, kind in marks):
            return "present"
        before = [kind for pos, kind in marks if pos < offset]
        return before[-1] if before else None

    def _negated(self, text: str, start: int) -> bool:
        lo = start
        while lo > 0 and start - lo < self.negation_window and text[lo - 1] not in _CLAUSE_END:
            lo -= 1
        before = text[lo:start]
        if not before:
            return False
        return bool(self.context["negation"].search(before)) and not self.context["uncertain"].search(before)

    def _flags(self, ctx: _Context, sentence: int) -> frozenset[str]:
        if sentence not in ctx.flags:
            part = _sentence(ctx, sentence)
            ctx.flags[sentence] = frozenset(name for name, program in self.context.items() if program.search(part))
        return ctx.flags[sentence]

    def _live_match(self, ctx: _Context, program: Program, exclude: Program | None) -> bool:
        for m in program.finditer(ctx.text):
            if exclude is not None and exclude.search(_window(ctx.text, m.start(), m.end())):
                continue
            if not self._negated(ctx.text, m.start()):
                return True
        return False


def _window(text: str, start: int, end: int, margin: int = 4) -> str:
    return text[max(0, start - margin) : end + margin]


def _sentence_starts(text: str) -> list[int]:
    starts = [0]
    for i, ch in enumerate(text):
        if ch in _SENTENCE_END and i + 1 < len(text):
            starts.append(i + 1)
    return starts


def _sentence(ctx: _Context, index: int) -> str:
    end = ctx.starts[index + 1] if index + 1 < len(ctx.starts) else len(ctx.text)
    return ctx.text[ctx.starts[index] : end]


def _program(pattern: str | None) -> Program | None:
    return compile_signal_pattern(pattern) if pattern else None


def parse(source: str) -> SignalSet:
    """A signal set from the TOML text of `data/signals/urgent.toml` (ValueError if malformed)."""
    data = tomllib.loads(source)
    context = {name: compile_signal_pattern(p) for name, p in data["context"]["patterns"].items()}
    missing = {"negation", "uncertain", "present", "present_strong", *SENTENCE_COUNTERS} - set(context)
    if missing:
        raise ValueError(f"context patterns missing: {sorted(missing)}")
    signals = []
    for s in data["signal"]:
        signals.append(
            Signal(
                id=s["id"],
                name=s["name"],
                cues=tuple(compile_signal_pattern(c) for c in s["cues"]),
                needs=_program(s.get("needs")),
                exclude=_program(s.get("exclude")),
                present=_program(s.get("present")),
                ongoing=bool(s.get("ongoing", False)),
                examples=tuple(s.get("examples", ())),
                counter_examples=tuple(s.get("counter_examples", ())),
            )
        )
    ids = [s.id for s in signals]
    if len(ids) != len(set(ids)):
        raise ValueError("signal ids must be unique")
    return SignalSet(tuple(signals), context, int(data["context"]["negation_window"]))


@lru_cache(maxsize=1)
def default_signals() -> SignalSet:
    return parse(resources.files("triage").joinpath(SIGNALS_FILE).read_text(encoding="utf-8"))
