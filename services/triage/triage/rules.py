"""Configurable rules: keywords or regular expressions that set or favour a label. Pure.

The defaults below ship with the project; a deployment adds its own rules for all stations or
for one station through the triage API (stored in triage's `rules` table). The built-in urgent
signals are not here but in triage/signals.py (data with negation and time handled); a station's
own `urgency=urgent` rule still wins whatever the model says: recall of `urgent` beats precision.

Regular expressions run in the consumer every station shares, so they are compiled with RE2
(`google-re2`): matching is linear in the text, whatever the pattern (`(a|aa)+$` cannot stall
triage), and RE2 refuses what it cannot run in linear time (backreferences, lookarounds). The
defaults are keywords; the urgent signals' patterns run on RE2 too.

Every rule has a public id (`self_harm#3` for a default, `#12` for deployment rule 12): the
public stream and webhooks carry that id and never the pattern, which is a citizen's word as
often as not (docs/triage.md)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

import re2

FIELDS = ("type", "category", "urgency", "needs_mediation")
MAX_PATTERN_LENGTH = 200  # the API and the table's CHECK constraint hold patterns to this
_RE2_MAX_MEM = 1 << 20  # bytes for one compiled program: a few hundred states is plenty for a rule
# Linear is not cheap: RE2's cost per character grows with the program, and `[^z]{999}[^y]{999}q` (28
# characters, program size 23,981) took 300 ms on a 5,000-character item. Measured on this project's
# machine, the worst case is about 0.6 µs per unit of program size over such an item, so a rule may
# have at most MAX_PROGRAM_SIZE and the rules of one station (or of the deployment) together
# REGEX_BUDGET: at most ~6 ms per item each, whatever a leader writes.
MAX_PROGRAM_SIZE = 2_000
REGEX_BUDGET = 10_000


class InvalidPattern(ValueError):
    """A pattern RE2 cannot compile (or too long). The message names no part of the pattern."""


class Program(Protocol):
    """What this module uses of a compiled RE2 program (google-re2 ships no type information)."""

    @property
    def programsize(self) -> int: ...

    def search(self, text: str) -> object: ...


def re2_options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # RE2 would print the pattern to stderr; patterns stay out of logs
    options.max_mem = _RE2_MAX_MEM
    return options


def compile_pattern(pattern: str) -> Program:
    """The RE2 program of a rule's regex; InvalidPattern if RE2 cannot compile it."""
    if not pattern or len(pattern) > MAX_PATTERN_LENGTH:
        raise InvalidPattern(f"pattern must be 1 to {MAX_PATTERN_LENGTH} characters")
    try:
        compiled: Program = re2.compile(pattern, re2_options())
    except re2.error as exc:
        detail = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise InvalidPattern(f"not a regular expression RE2 can run in linear time: {detail.split(':')[0]}") from None
    if compiled.programsize > MAX_PROGRAM_SIZE:
        raise InvalidPattern(
            f"too costly for a rule (program size {compiled.programsize}, at most "
            f"{MAX_PROGRAM_SIZE}): use fewer or smaller repetitions"
        )
    return compiled


def regex_cost(patterns: list[str]) -> int:
    """What these regex rules cost together (RE2 program sizes); a pattern that no longer compiles
    is skipped at load and costs nothing."""
    total = 0
    for pattern in patterns:
        try:
            total += compile_pattern(pattern).programsize
        except InvalidPattern:
            continue
    return total


@dataclass(frozen=True)
class Rule:
    field: str
    value: str
    pattern: str
    is_regex: bool = False
    weight: float = 1.0
    station: str | None = None  # None: every station
    rule_id: str | None = None  # database id for deployment rules, None for the defaults
    label: str | None = None  # defaults: "<group>#<n>", their public id

    @cached_property
    def _regex(self) -> Program:
        return compile_pattern(self.pattern)

    def check(self) -> Rule:
        """Compile now (raises InvalidPattern), so a bad stored rule is refused at load, not per item."""
        if self.is_regex:
            _ = self._regex
        return self

    def matches(self, text: str) -> bool:
        return bool(self._regex.search(text)) if self.is_regex else self.pattern in text

    @property
    def public_id(self) -> str:
        """What identifies the rule on the public stream: never the pattern."""
        if self.rule_id:
            return f"#{self.rule_id}"
        return self.label or "default"

    @property
    def name(self) -> str:
        """The internal name, with the pattern, for staff (triage's own decision table)."""
        return f"{self.field}={self.value}:{self.pattern}({self.public_id})"


@dataclass(frozen=True)
class Hit:
    rule: Rule

    @property
    def reason(self) -> str:
        return f"rule:{self.rule.name}"

    @property
    def public_reason(self) -> str:
        return f"rule:{self.rule.field}={self.rule.value}:{self.rule.public_id}"


def _kw(field: str, value: str, *words: str, weight: float = 1.0, group: str | None = None) -> list[Rule]:
    """Keyword rules of one group; each gets the public id `<group>#<n>` (group: the value by default)."""
    group = group or value
    return [Rule(field, value, w, weight=weight, label=f"{group}#{n}") for n, w in enumerate(words, 1)]


DEFAULT_RULES: tuple[Rule, ...] = tuple(
    # Urgent safety signals are not keywords here: triage/signals.py finds them with their context
    # (negation, past time, a suggestion or thanks), from data/signals/urgent.toml. These favour
    # `high`: a report of a past fraud or theft is still more than routine.
    _kw(
        "urgency",
        "high",
        "诈骗",
        "被骗",
        "骗了",
        "盗窃",
        "被偷",
        "失窃",
        "撬",
        "抢",
        "醉驾",
        "酒驾",
        "事故",
        "受伤",
        "走失",
        "没回家",
        "联系不上",
        "推搡",
        "吸毒",
        "拖欠工资",
        "欠薪",
        "倒塌",
    )
    + _kw(
        "category",
        "police_conduct",
        "民警态度",
        "警察态度",
        "态度恶劣",
        "态度非常差",
        "不作为",
        "推诿",
        "乱罚款",
        "吃拿卡要",
        "警号",
        "偏袒",
        "好处费",
        "没有出示证件",
        weight=1.5,
    )
    + _kw(
        "category",
        "fraud",
        "诈骗",
        "被骗",
        "刷单",
        "转账",
        "冒充客服",
        "冒充公检法",
        "安全账户",
        "网贷",
        "杀猪盘",
        "投资理财",
        "博彩",
    )
    + _kw(
        "category",
        "family_dispute",
        "家暴",
        "家庭暴力",
        "离婚",
        "婚姻",
        "夫妻",
        "丈夫",
        "妻子",
        "前夫",
        "前妻",
        "赡养",
        "抚养费",
        "婆媳",
        "分家产",
    )
    + _kw(
        "category",
        "labor_dispute",
        "欠薪",
        "讨薪",
        "拖欠工资",
        "工资",
        "劳务费",
        "包工头",
        "农民工",
        "工伤",
        "劳动仲裁",
        "辞退",
    )
    + _kw(
        "category", "neighbor_dispute", "邻居", "楼上", "楼下", "隔壁", "漏水", "宅基地", "围墙", "房东", "租客", "业主"
    )
    + _kw("category", "noise", "噪音", "噪声", "吵闹", "太吵", "扰民", "广场舞", "装修声", "电钻", "音响", "睡不着")
    + _kw("category", "theft", "盗窃", "被偷", "失窃", "小偷", "偷走", "扒窃", "入室", "被撬")
    + _kw(
        "category",
        "traffic",
        "交通",
        "车祸",
        "事故",
        "违停",
        "违章停车",
        "乱停",
        "酒驾",
        "醉驾",
        "红绿灯",
        "拥堵",
        "超速",
        "追尾",
        "肇事",
    )
    + _kw(
        "category",
        "safety_hazard",
        "隐患",
        "消防",
        "煤气",
        "燃气",
        "电线",
        "危房",
        "井盖",
        "着火",
        "起火",
        "烟花爆竹",
        "倒塌",
    )
    + _kw(
        "category",
        "admin_service",
        "身份证",
        "户口",
        "户籍",
        "居住证",
        "证件",
        "办证",
        "迁户",
        "签注",
        "通行证",
        "无犯罪记录",
        "驾驶证",
    )
    + _kw(
        "category",
        "public_order",
        "打架",
        "斗殴",
        "寻衅",
        "赌博",
        "吸毒",
        "卖淫",
        "持刀",
        "醉酒闹事",
        "闹事",
        "聚集",
        "收保护费",
    )
    + _kw("type", "praise", "表扬", "感谢", "锦旗", "点赞", "辛苦了", "谢谢", weight=1.5)
    + _kw("type", "report", "举报", "检举", "揭发")
    + _kw("type", "complaint", "投诉", "不满", "态度恶劣", "不作为", "推诿")
    + _kw("type", "help", "求助", "帮忙", "救命", "帮帮", "请求", "请马上")
    + _kw("type", "suggestion", "建议", "希望能", "能否", "可否")
    + _kw("type", "inquiry", "咨询", "请问", "如何办理", "需要什么", "需要哪些", "多久", "吗？", "吗?")
)


class RuleSet:
    """The default rules plus a deployment's own, evaluated against normalised text."""

    def __init__(self, rules: list[Rule] | tuple[Rule, ...] = DEFAULT_RULES) -> None:
        self.rules = tuple(rules)

    def with_rules(self, extra: list[Rule]) -> RuleSet:
        return RuleSet(DEFAULT_RULES + tuple(extra))

    def hits(self, text: str, station: str | None) -> list[Hit]:
        return [Hit(r) for r in self.rules if (r.station is None or r.station == station) and r.matches(text)]
