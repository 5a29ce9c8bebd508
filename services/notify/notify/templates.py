"""zh-CN message templates, rendered with Jinja2 (autoescaping on)."""

from __future__ import annotations

from jinja2 import Environment, StrictUndefined, select_autoescape

_env = Environment(autoescape=select_autoescape(default=True, default_for_string=True), undefined=StrictUndefined)

TEMPLATES = {
    "acknowledgement": (
        "【{{ station_name }}】您的反映已受理，编号 {{ tracking_no }}，查询码 {{ access_code }}。"
        "可凭编号和查询码查询办理进度：{{ track_url }}"
    ),
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
