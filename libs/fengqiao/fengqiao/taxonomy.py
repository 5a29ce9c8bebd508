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
# The lifecycle (DESIGN section 5) as staff read it; citizens read a returned item as plainly returned,
# not as waiting for the leader's review, which is the station's business.
STATUS_LABELS = {
    "received": "已受理",
    "triaged": "已分类",
    "assigned": "已分派",
    "accepted": "已签收",
    "in_progress": "办理中",
    "mediating": "调解中",
    "resolved": "已办结",
    "visited": "已回访",
    "closed": "已结案",
    "returned": "退单待审",
    "reassigned": "已改派",
    "escalated": "已上报",
    "overdue": "已超期",
    "transferred": "已移交",
    "merged": "已并单",
    "reopened": "重新办理",
    "voided": "已作废",
}
CITIZEN_STATUS_LABELS = STATUS_LABELS | {"returned": "已退单", "voided": "不予受理"}

# Categories that are disputes between people (矛盾纠纷): mediation is offered, repeats are watched.
DISPUTE_CATEGORIES = ("neighbor_dispute", "family_dispute", "labor_dispute")
