"""Pure rules of triage: keyword classification and officer choice. No I/O.

This is the walking skeleton's rule set: keyword rules, urgent safety signals first. The
statistical model and per-station configuration come with the triage issue."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time

MODEL_VERSION = "rules-0.1"

# Urgent safety signals are checked first: recall of `urgent` beats precision.
URGENT_KEYWORDS = ("持刀", "砍人", "杀人", "打人", "打架", "打起来", "斗殴", "动手", "威胁", "跳楼", "自杀", "轻生",
                   "聚集", "围堵", "堵路", "讨薪", "着火", "起火", "爆炸", "绑架", "家暴", "救命", "枪")
HIGH_KEYWORDS = ("诈骗", "被骗", "盗窃", "被偷", "失窃", "抢", "醉驾", "酒驾", "事故", "受伤", "老人走失", "孩子走失")

CATEGORY_RULES: list[tuple[str, tuple[str, ...]]] = [
    ("police_conduct", ("民警态度", "警察态度", "态度恶劣", "不作为", "推诿", "乱罚款", "吃拿卡要", "警号", "辅警")),
    ("fraud", ("诈骗", "被骗", "刷单", "转账", "冒充客服", "网贷", "投资理财")),
    ("family_dispute", ("家暴", "离婚", "婚姻", "夫妻", "丈夫", "妻子", "赡养", "抚养")),
    ("labor_dispute", ("欠薪", "讨薪", "拖欠工资", "工资", "老板", "劳务费", "包工头")),
    ("neighbor_dispute", ("邻居", "楼上", "楼下", "隔壁", "漏水", "宅基地", "占道", "物业")),
    ("noise", ("噪音", "噪声", "吵闹", "扰民", "广场舞", "装修声")),
    ("theft", ("盗窃", "被偷", "失窃", "小偷", "偷走", "电动车丢")),
    ("traffic", ("交通", "车祸", "事故", "违停", "乱停", "酒驾", "醉驾", "红绿灯", "拥堵")),
    ("safety_hazard", ("隐患", "消防", "煤气", "燃气", "电线", "危房", "井盖", "着火", "起火")),
    ("admin_service", ("身份证", "户口", "户籍", "居住证", "证件", "办证", "迁户", "签注")),
    ("public_order", ("打架", "打起来", "斗殴", "打人", "吵架", "争吵", "赌博", "吸毒", "卖淫", "寻衅", "持刀", "威胁",
                      "聚集", "醉酒闹事")),
]

TYPE_RULES: list[tuple[str, tuple[str, ...]]] = [
    ("praise", ("表扬", "感谢", "锦旗", "点赞", "辛苦了")),
    ("report", ("举报", "检举", "揭发")),
    ("complaint", ("投诉", "不满", "态度恶劣", "不作为", "推诿")),
    ("help", ("求助", "帮忙", "救命", "帮帮", "报警", "怎么办")),
    ("suggestion", ("建议", "希望", "能否", "可否", "应该")),
    ("inquiry", ("咨询", "请问", "如何办理", "需要什么", "多久", "吗？", "吗?")),
]

DISPUTES = frozenset({"neighbor_dispute", "family_dispute", "labor_dispute"})


@dataclass(frozen=True)
class Classification:
    type: str
    category: str
    urgency: str
    needs_mediation: bool
    confidence: float
    reasons: list[str] = field(default_factory=list)
    model_version: str = MODEL_VERSION


def _first_match(text: str, rules: list[tuple[str, tuple[str, ...]]]) -> tuple[str | None, str | None]:
    for label, words in rules:
        for word in words:
            if word in text:
                return label, word
    return None, None


def classify(title: str | None, content: str) -> Classification:
    text = f"{title or ''} {content}"
    reasons: list[str] = []
    urgent_hits = [w for w in URGENT_KEYWORDS if w in text]
    high_hits = [w for w in HIGH_KEYWORDS if w in text]
    if urgent_hits:
        urgency = "urgent"
        reasons.append("rule:urgent_signal")
    elif high_hits:
        urgency = "high"
        reasons.append("rule:high_signal")
    else:
        urgency = "normal"

    category, _ = _first_match(text, CATEGORY_RULES)
    if category:
        reasons.append(f"rule:category:{category}")
    type_, _ = _first_match(text, TYPE_RULES)
    if type_:
        reasons.append(f"rule:type:{type_}")
    category = category or "other"
    if type_ is None:
        type_ = "complaint" if category == "police_conduct" else ("help" if urgency in ("urgent", "high") else "other")
    matched = sum(1 for r in reasons if r.startswith("rule:"))
    confidence = round(min(0.95, 0.4 + 0.15 * matched), 2)
    return Classification(type=type_, category=category, urgency=urgency,
                          needs_mediation=category in DISPUTES, confidence=confidence, reasons=reasons)


# -- assignment ---------------------------------------------------------------------------------

TEAM_FOR_CATEGORY = {
    "neighbor_dispute": "mediation",
    "family_dispute": "mediation",
    "labor_dispute": "mediation",
}


@dataclass(frozen=True)
class Candidate:
    staff_id: str
    role: str
    team: str | None
    open_items: int
    on_duty: bool


@dataclass(frozen=True)
class Assignment:
    assignee_id: str | None
    assignee_role: str | None
    team: str | None
    reason: str
    flagged: bool = False


def on_shift(now: time, starts: time, ends: time) -> bool:
    if starts <= ends:
        return starts <= now < ends
    return now >= starts or now < ends  # overnight shift


def choose_assignee(c: Classification, candidates: list[Candidate]) -> Assignment:
    """Rules: a complaint about police conduct goes to the instructor or leader, never to an
    officer; disputes prefer the mediation team; otherwise the on-duty officer with the least
    open work. Nobody on duty: the leader's queue, flagged, never dropped."""
    leaders = sorted((x for x in candidates if x.role in ("instructor", "leader")),
                     key=lambda x: (x.role != "instructor", x.open_items, x.staff_id))
    if c.category == "police_conduct":
        if leaders:
            return Assignment(leaders[0].staff_id, leaders[0].role, None, "rule:police_conduct_to_leadership")
        return Assignment(None, None, None, "rule:police_conduct_no_leadership", flagged=True)

    on_duty = [x for x in candidates if x.on_duty and x.role in ("officer", "mediator")]
    wanted_team = TEAM_FOR_CATEGORY.get(c.category)
    if wanted_team and c.urgency != "urgent":
        team_members = [x for x in on_duty if x.team == wanted_team or x.role == "mediator"]
        if team_members:
            pick = min(team_members, key=lambda x: (x.open_items, x.staff_id))
            return Assignment(pick.staff_id, pick.role, pick.team, f"rule:team:{wanted_team};roster;least_load={pick.open_items}")
    officers = [x for x in on_duty if x.role == "officer"] or on_duty
    if officers:
        pick = min(officers, key=lambda x: (x.open_items, x.staff_id))
        why = "rule:urgent_on_duty_now" if c.urgency == "urgent" else "rule:default"
        return Assignment(pick.staff_id, pick.role, pick.team, f"{why};roster;least_load={pick.open_items}")
    leader = next((x for x in leaders if x.role == "leader"), leaders[0] if leaders else None)
    if leader is not None:
        return Assignment(leader.staff_id, leader.role, None, "rule:no_one_on_duty_leader_queue", flagged=True)
    return Assignment(None, None, None, "rule:no_staff", flagged=True)
