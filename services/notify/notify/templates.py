"""zh-CN message templates, rendered with Jinja2 (autoescaping on)."""

from __future__ import annotations

from jinja2 import Environment, StrictUndefined, select_autoescape

_env = Environment(autoescape=select_autoescape(default=True, default_for_string=True), undefined=StrictUndefined)

TEMPLATES = {
    "acknowledgement": (
        "【{{ station_name }}】您的反映已受理，编号 {{ tracking_no }}，查询码 {{ access_code }}。"
        "可凭编号和查询码查询办理进度：{{ track_url }}"
    ),
    "result": "【{{ station_name }}】您反映的问题（编号 {{ tracking_no }}）已办结：{{ text }} 查询：{{ track_url }}",
    "more_info": "【{{ station_name }}】您反映的问题（编号 {{ tracking_no }}）需要您补充：{{ text }} 查询：{{ track_url }}",
    "rectified": "【{{ station_name }}】您提出的意见（编号 {{ tracking_no }}）已整改：{{ text }} 感谢您的监督。",
    "reminder.title": "即将超时：{{ tracking_no }}",
    "reminder.body": "{{ station_name }}：{{ clock_label }}时限为{{ due }}，请抓紧办理。",
    "returned.title": "退单待审：{{ tracking_no }}",
    "returned.body": "{{ station_name }}：承办人申请退单，请审核。",
    "reassigned.title": "改派给您：{{ tracking_no }}",
    "reassigned.body": "{{ station_name }}：该事项已改派给您，请尽快签收。",
    "escalated.title": "超时上报：{{ tracking_no }}",
    "escalated.body": "{{ station_name }}：{{ clock_label }}已超过时限（{{ due }}），请督促办理。",
    "supervision.title": "督办：{{ tracking_no }}",
    "supervision.body": "{{ station_name }}：{{ clock_label }}超时5个工作日仍未完成，请分局督办。",
    "reopened.title": "重新办理：{{ tracking_no }}",
    "reopened.body": "{{ station_name }}：群众回访不满意或所领导要求重新办理，请审核后指派。",
    "assigned.title": "新分派：{{ tracking_no }}",
    "assigned.body": (
        "{{ station_name }}：{{ category_label }}（{{ urgency_label }}）已分派给您，"
        "请尽快签收。"
    ),
    "urgent.title": "紧急警情：{{ tracking_no }}",
    "urgent.body": "{{ station_name }}：紧急{{ category_label }}事项已分派给在岗民警{{ assignee_name }}，请所领导关注。",
    "alert.title": "{{ level_label }}预警：{{ kind_label }}",
    "alert.body": "{{ station_name }}：{{ explanation }}（涉及{{ count }}件反映）",
    "unassigned.title": "待分派：{{ tracking_no }}",
    "unassigned.body": "{{ station_name }}：当前无在岗民警，{{ category_label }}（{{ urgency_label }}）已转入所领导待办，请尽快指派。",
}

_compiled = {name: _env.from_string(source) for name, source in TEMPLATES.items()}


def render(name: str, **params: str) -> str:
    return _compiled[name].render(**params)
