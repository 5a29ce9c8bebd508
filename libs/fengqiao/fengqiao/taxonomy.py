"""Chinese names of the shared taxonomy (DESIGN section 5), for every user-facing text."""

from __future__ import annotations

TYPE_LABELS = {
    "complaint": "投诉",
    "suggestion": "建议",
    "help": "求助",
    "inquiry": "咨询",
    "report": "举报",
    "praise": "表扬",
    "other": "其他",
}
CATEGORY_LABELS = {
    "public_order": "治安",
    "neighbor_dispute": "邻里纠纷",
    "family_dispute": "婚姻家庭纠纷",
    "labor_dispute": "劳资纠纷",
    "traffic": "交通",
    "fraud": "电信网络诈骗",
    "theft": "盗窃",
    "noise": "噪声扰民",
    "safety_hazard": "安全隐患",
    "police_conduct": "民警作风纪律",
    "admin_service": "证件办事服务",
    "other": "其他",
}
URGENCY_LABELS = {"urgent": "紧急", "high": "较急", "normal": "一般", "low": "不急"}

# Categories that are disputes between people (矛盾纠纷): mediation is offered, repeats are watched.
DISPUTE_CATEGORIES = ("neighbor_dispute", "family_dispute", "labor_dispute")
