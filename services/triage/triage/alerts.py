"""Early warning (群体性事件预警). Pure: the database layer counts, these rules decide.

- cluster: distinct reporters on the same category at the same place within the window
  (thresholds per station and category; anonymous reporters count once per item).
- trend: items of a category in the last 24 hours against the mean per day of the 7 days
  before; the thresholds are multiples of that mean (at least 5 items).
- repeat_dispute: the same reporter in dispute items again and again within 90 days, a risk of
  a dispute turning into a crime."""

from __future__ import annotations

from dataclasses import dataclass

from fengqiao.taxonomy import CATEGORY_LABELS

LEVELS = ("yellow", "orange", "red")
MAX_MEMBERS = 100  # an alert lists its latest items; the count says how many there are
LEVEL_LABELS = {"yellow": "黄色", "orange": "橙色", "red": "红色"}
TREND_MIN_ITEMS = 5


@dataclass(frozen=True)
class Thresholds:
    window_hours: int
    yellow: int
    orange: int
    red: int

    def level(self, value: float) -> str | None:
        if value >= self.red:
            return "red"
        if value >= self.orange:
            return "orange"
        if value >= self.yellow:
            return "yellow"
        return None


@dataclass(frozen=True)
class Draft:
    kind: str
    key: str
    level: str
    category: str | None
    members: list[str]
    reporters: int
    window_hours: int
    explanation: str  # for staff (triage's table and API): may name the place
    public_explanation: str = ""  # for the public stream and webhooks: no address; "" = same as explanation

    @property
    def public(self) -> str:
        return self.public_explanation or self.explanation


def rank(level: str) -> int:
    return LEVELS.index(level)


def _label(category: str) -> str:
    return CATEGORY_LABELS.get(category, category)


def cluster(
    category: str, place_key: str, place_label: str, members: list[str], reporters: int, t: Thresholds
) -> Draft | None:
    level = t.level(reporters)
    if level is None:
        return None

    def explain(place: str) -> str:
        return (
            f"{t.window_hours}小时内{reporters}名不同群众反映{place}的{_label(category)}问题，"
            f"达到{LEVEL_LABELS[level]}预警阈值（{getattr(t, level)}人），请关注是否可能引发群体性事件。"
        )

    # The place label is the citizens' own address text: staff see it, the public stream does not.
    return Draft(
        "cluster",
        f"{category}|{place_key}",
        level,
        category,
        members[-MAX_MEMBERS:],
        reporters,
        t.window_hours,
        explain(place_label),
        explain("同一地点"),
    )


def trend(category: str, last_day: int, daily_mean: float, members: list[str], t: Thresholds) -> Draft | None:
    if last_day < TREND_MIN_ITEMS:
        return None
    ratio = last_day / max(daily_mean, 1.0)
    level = t.level(ratio)
    if level is None:
        return None
    return Draft(
        "trend",
        category,
        level,
        category,
        members[-MAX_MEMBERS:],
        len(members),
        24,
        f"近24小时{_label(category)}类反映{last_day}件，为前7日日均（{daily_mean:.1f}件）的{ratio:.1f}倍，"
        f"呈上升趋势（{LEVEL_LABELS[level]}）。",
    )


def repeat_dispute(reporter_key: str, members: list[str], categories: list[str], t: Thresholds) -> Draft | None:
    level = t.level(len(members))
    if level is None:
        return None
    kinds = "、".join(sorted({_label(c) for c in categories}))
    return Draft(
        "repeat_dispute",
        reporter_key,
        level,
        categories[-1] if categories else None,
        members[-MAX_MEMBERS:],
        1,
        t.window_hours,
        f"同一当事人{t.window_hours // 24}天内第{len(members)}次反映纠纷（{kinds}），矛盾反复，"
        f"存在激化为刑事案件的风险（{LEVEL_LABELS[level]}），建议提前介入调解。",
    )
