"""zh-CN message templates, rendered with Jinja2, per deployment and per station.

Built-in defaults live here. A deployment may override any of them, and add a profile (signature
and hotline number), in NOTIFY_TEMPLATE_DIR:

    profile.toml                     signature = "…", hotline = "…", [stations.KZ01] signature = …

The hotline (咨询电话) a citizen is given: the station's in profile.toml, else the station's own
phone from the directory (`fengqiao.station.upserted`), else the deployment's, else 110. Emergencies
always say 110 (the acknowledgement tells the citizen so).
    citizen/result.txt               overrides the result message for every station
    stations/KZ01/citizen/result.txt overrides it for KZ01 only

Lookup order for station S: stations/S/, then the deployment folder, then the built-ins. Only the
built-in names are ever looked up, only inside the folder (symbolic links leading out of it are
refused), and station folders are found once at start, so neither a template name nor a station
code from a request or an event can reach any other file, and the environments cached per station
are bounded by the folders. Text
templates (SMS, e-mail text part, console) are plain text; the e-mail HTML part (`*.html`) is
autoescaped, so whatever a citizen or officer typed is shown as text. Every template is compiled
and rendered with sample values at start, so a broken override stops the service with its name
instead of failing a message at 3 a.m."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    DictLoader,
    Environment,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    select_autoescape,
)

# What a station code may look like wherever one picks a folder (KZ01, SH-PD-03): no dots, no
# slashes, never empty, so it can only ever name one folder below stations/.
STATION_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")

_SIGN = "【{{ signature }}】"

BUILTIN: dict[str, str] = {
    # -- to citizens: SMS and the e-mail text part; *.subject.txt is the e-mail subject --------------
    "citizen/acknowledgement.txt": (
        _SIGN + "您的反映已受理，编号 {{ tracking_no }}，查询码 {{ access_code }}。"
        "可凭编号和查询码查询办理进度 {{ track_url }} 咨询电话 {{ hotline }}，紧急情况请拨打110"
    ),
    "citizen/acknowledgement.subject.txt": "您的反映已受理（编号 {{ tracking_no }}）",
    "citizen/result.txt": (
        _SIGN + "您反映的问题（编号 {{ tracking_no }}）已办结：{{ text }} "
        "请点击链接对办理结果进行评价 {{ survey_url }} 咨询电话 {{ hotline }}"
    ),
    "citizen/result.subject.txt": "您反映的问题已办结（编号 {{ tracking_no }}），请您评价",
    "citizen/more_info.txt": (
        _SIGN + "您反映的问题（编号 {{ tracking_no }}）需要您补充：{{ text }} 查询进度 {{ track_url }} "
        "咨询电话 {{ hotline }}"
    ),
    "citizen/more_info.subject.txt": "您反映的问题需要补充信息（编号 {{ tracking_no }}）",
    "citizen/rectified.txt": _SIGN + "您提出的意见（编号 {{ tracking_no }}）已整改：{{ text }} 感谢您的监督。",
    "citizen/rectified.subject.txt": "您提出的意见已整改（编号 {{ tracking_no }}）",
    # The HTML part of every citizen e-mail; `body` is the text above (autoescaped here), and the
    # survey and tracking links are real links (their addresses escaped into the attribute).
    "email.html": (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>{{ subject }}</title></head>'
        '<body style="font-family:sans-serif;line-height:1.6"><p>{{ body }}</p>'
        "{% if survey_url is defined and survey_url %}"
        '<p><a href="{{ survey_url }}">点击此处对办理结果进行评价</a></p>{% endif %}'
        '{% if track_url is defined and track_url %}<p><a href="{{ track_url }}">查询办理进度</a></p>{% endif %}'
        '<p style="color:#666">{{ signature }} · 咨询电话 {{ hotline }}<br>此邮件由系统发送，请勿直接回复。</p>'
        "</body></html>"
    ),
    # -- to staff by SMS, urgent matters only (besides the console) -------------------------------------
    "staff/urgent.txt": (
        _SIGN
        + "紧急警情 {{ tracking_no }}：{{ category_label }}，已分派给{{ assignee_name or '所领导' }}，请立即关注。"
    ),
    "staff/alert.txt": _SIGN + "{{ level_label }}预警（{{ kind_label }}）：{{ explanation }}，请登录系统处置。",
    # -- to staff, in the console inbox ------------------------------------------------------------
    "console/assigned.title.txt": "新分派：{{ tracking_no }}",
    "console/assigned.body.txt": (
        "{{ station_name }}：{{ category_label }}（{{ urgency_label }}）已分派给您，请尽快签收。"
    ),
    "console/urgent.title.txt": "紧急警情：{{ tracking_no }}",
    "console/urgent.body.txt": (
        "{{ station_name }}：紧急{{ category_label }}事项已分派给在岗民警{{ assignee_name }}，请所领导关注。"
    ),
    "console/unassigned.title.txt": "待分派：{{ tracking_no }}",
    "console/unassigned.body.txt": (
        "{{ station_name }}：当前无在岗民警，{{ category_label }}（{{ urgency_label }}）已转入所领导待办，请尽快指派。"
    ),
    "console/reminder.title.txt": "即将超时：{{ tracking_no }}",
    "console/reminder.body.txt": "{{ station_name }}：{{ clock_label }}时限为{{ due }}，请抓紧办理。",
    "console/citizen_added.title.txt": "群众补充：{{ tracking_no }}",
    "console/citizen_added.body.txt": (
        "{{ station_name }}：群众{{ addition_label }}，请在事项详情中查看。{{ clock_note }}"
    ),
    # A person's steps (mediation's staff notices): who did it, why, from whom, from which station.
    # `reason` and the names are values, never template source: whatever staff typed is shown as typed.
    "console/returned.title.txt": "退单待审：{{ tracking_no }}",
    "console/returned.body.txt": "{{ station_name }}：{{ actor_name }}申请退单，理由：{{ reason }}。请审核。",
    "console/reassigned.title.txt": "改派给您：{{ tracking_no }}",
    "console/reassigned.body.txt": (
        "{{ station_name }}：{{ actor_name }}将该事项改派给您"
        "{% if previous_name %}（原承办人：{{ previous_name }}）{% endif %}"
        "{% if reason %}，说明：{{ reason }}{% endif %}。请尽快签收。"
    ),
    "console/transferred.title.txt": "移交本所：{{ tracking_no }}",
    "console/transferred.body.txt": (
        "{{ station_name }}：{{ from_station_name }}（{{ actor_name }}）将该事项移交本所"
        "{% if reason %}，说明：{{ reason }}{% endif %}。请尽快指派。"
    ),
    "console/return_rejected.title.txt": "退单未通过：{{ tracking_no }}",
    "console/return_rejected.body.txt": (
        "{{ station_name }}：{{ actor_name }}不同意退单{% if reason %}，说明：{{ reason }}{% endif %}。请继续办理。"
    ),
    "console/manual_escalation.title.txt": "上报所领导：{{ tracking_no }}",
    "console/manual_escalation.body.txt": (
        "{{ station_name }}：{{ actor_name }}将该事项上报所领导，理由：{{ reason or '未说明' }}。请阅处。"
    ),
    "console/reopened.title.txt": "重新办理：{{ tracking_no }}",
    "console/reopened.body.txt": (
        "{{ station_name }}：{{ actor_name }}要求重新办理{% if reason %}，理由：{{ reason }}{% endif %}。请审核后指派。"
    ),
    "console/visit_dissatisfied.title.txt": "回访不满意：{{ tracking_no }}",
    "console/visit_dissatisfied.body.txt": (
        "{{ station_name }}：{{ actor_name }}回访，群众不满意{% if reason %}，原因：{{ reason }}{% endif %}。"
        "事项已重新打开，请审核后指派。"
    ),
    "console/withdrawn.title.txt": "无需再办理：{{ tracking_no }}",
    "console/withdrawn.body.txt": (
        "{{ station_name }}：该事项{{ withdrawn_reason }}，无需再办理{% if reason %}（说明：{{ reason }}）{% endif %}。"
    ),
    # The clock's own steps (public events of the timers).
    "console/escalated.title.txt": "超时上报：{{ tracking_no }}",
    "console/escalated.body.txt": "{{ station_name }}：{{ clock_label }}已超过时限（{{ due }}），请督促办理。",
    "console/supervision.title.txt": "督办：{{ tracking_no }}",
    "console/supervision.body.txt": "{{ station_name }}：{{ clock_label }}超时5个工作日仍未完成，请分局督办。",
    "console/dissatisfied.title.txt": "群众不满意：{{ tracking_no }}",
    "console/dissatisfied.body.txt": (
        "{{ station_name }}：群众回访评价不满意，原因：{{ reason }}。事项已重新打开，请审核后指派。"
    ),
    "console/alert.title.txt": "{{ level_label }}预警：{{ kind_label }}",
    "console/alert.body.txt": "{{ station_name }}：{{ explanation }}（涉及{{ count }}件反映）",
    "console/channel_not_configured.title.txt": "{{ channel_label }}通道未配置",
    "console/channel_not_configured.body.txt": (
        "{{ station_name }}：系统未配置{{ channel_label }}发送通道，今天起发给群众的{{ channel_label }}无法送达。"
        "请在“发送失败”列表中查看并电话告知群众，同时联系系统管理员配置通道。"
    ),
    "console/delivery_failed.title.txt": "消息发送失败：{{ tracking_no or '订阅推送' }}",
    "console/delivery_failed.body.txt": (
        "{{ station_name }}：发给{{ audience_label }}的{{ channel_label }}在{{ attempts }}次尝试后仍未送达"
        "（{{ error }}），请核实联系方式后在“发送失败”列表中重发，或电话告知。"
    ),
}

# Values for previews and for the start-up check of every template.
SAMPLE = dict(
    tracking_no="FQ7K3M9QXA",
    access_code="482913",
    station_name="矿区派出所",
    track_url="https://fengqiao.example/track?no=FQ7K3M9QXA",
    survey_url="https://fengqiao.example/survey?t=FQ7K3M9QXA.1790000000.abc",
    text="经调解，双方已就噪声问题达成一致，物业已加装隔音设施。",
    subject="示例主题",
    body="示例正文",
    category_label="邻里纠纷",
    urgency_label="一般",
    assignee_name="张伟",
    actor_name="李明",
    previous_name="王刚",
    from_station_name="新村派出所",
    withdrawn_reason="已改派给张伟",
    clock_label="办结",
    due="11月30日 17:00",
    reason="问题没有解决",
    level_label="橙色",
    kind_label="群体性事件苗头",
    explanation="同一小区3天内5件相似反映",
    count="5",
    audience_label="群众",
    channel_label="短信",
    attempts="8",
    error="短信网关无响应",
    addition_label="已在进度查询页补充材料",
    clock_note="办理时限已恢复计算。",
)

CHANNEL_LABELS = {"sms": "短信", "email": "电子邮件", "webhook": "订阅推送"}
AUDIENCE_LABELS = {"citizen": "群众", "subscriber": "外部系统", "staff": "工作人员"}


class TemplateConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Profile:
    signature: str
    hotline: str


class FolderLoader(BaseLoader):
    """Overrides from one folder: only the built-in template names, and only files that are inside
    the folder once symbolic links are resolved."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def get_source(self, environment: Environment, template: str):
        if template not in BUILTIN:
            raise TemplateNotFound(template)
        path = (self.root / template).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            raise TemplateNotFound(template)
        mtime = path.stat().st_mtime

        def uptodate() -> bool:
            try:
                return path.stat().st_mtime == mtime
            except OSError:
                return False

        return path.read_text(encoding="utf-8"), str(path), uptodate


class Templates:
    def __init__(self, template_dir: Path | None = None) -> None:
        self.dir = template_dir
        self._profiles: dict = {}
        self.station_folders: frozenset[str] = frozenset()
        if template_dir is not None:
            if not template_dir.is_dir():
                raise TemplateConfigError(f"NOTIFY_TEMPLATE_DIR {template_dir} is not a folder")
            profile = template_dir / "profile.toml"
            if profile.exists():
                try:
                    self._profiles = tomllib.loads(profile.read_text(encoding="utf-8"))
                except tomllib.TOMLDecodeError as exc:
                    raise TemplateConfigError(f"{profile}: {exc}") from exc
            stations = template_dir / "stations"
            folders = sorted(p.name for p in stations.iterdir() if p.is_dir()) if stations.is_dir() else []
            odd = [name for name in folders if not STATION_CODE.match(name)]
            if odd:
                raise TemplateConfigError(f"{stations}: {', '.join(odd)} is not a station code")
            self.station_folders = frozenset(folders)
        # One environment for the deployment (None) and one per station folder found at start:
        # stations without a folder share the deployment's, so the cache cannot grow with input.
        self._envs: dict[str | None, Environment] = {}

    def _env(self, station: str | None) -> Environment:
        key = station if station in self.station_folders else None
        env = self._envs.get(key)
        if env is None:
            loaders: list[BaseLoader] = []
            if self.dir is not None:
                if key is not None:
                    loaders.append(FolderLoader(self.dir / "stations" / key))
                loaders.append(FolderLoader(self.dir))
            loaders.append(DictLoader(BUILTIN))
            env = self._envs[key] = Environment(
                loader=ChoiceLoader(loaders),
                undefined=StrictUndefined,
                keep_trailing_newline=False,
                autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
            )
        return env

    def profile(self, station: str | None, station_name: str, station_phone: str | None = None) -> Profile:
        """Signature and hotline: the station's profile, else (hotline) the station's own phone from
        the directory, else the deployment's, else the station name and 110."""
        own = (self._profiles.get("stations") or {}).get(station or "", {})
        return Profile(
            signature=own.get("signature") or self._profiles.get("signature") or station_name,
            hotline=own.get("hotline") or station_phone or self._profiles.get("hotline") or "110",
        )

    def render(
        self, name: str, *, station: str | None, station_name: str, station_phone: str | None = None, **params
    ) -> str:
        profile = self.profile(station, station_name, station_phone)
        values = dict(station_name=station_name, signature=profile.signature, hotline=profile.hotline, **params)
        if name not in BUILTIN:
            raise TemplateNotFound(name)
        return self._env(station).get_template(name).render(**values).strip()

    def names(self) -> list[str]:
        return sorted(BUILTIN)

    def preview(
        self, name: str, station: str | None, station_name: str | None = None, station_phone: str | None = None
    ) -> str:
        params = {k: v for k, v in SAMPLE.items() if k != "station_name"}
        return self.render(
            name,
            station=station,
            station_name=station_name or SAMPLE["station_name"],
            station_phone=station_phone,
            **params,
        )

    def check(self, stations: list[str]) -> None:
        """Compile and render every template for the deployment and each station with sample values."""
        for station in [None, *stations]:
            for name in self.names():
                try:
                    self.preview(name, station)
                except TemplateError as exc:
                    where = f"station {station}" if station else "the deployment"
                    raise TemplateConfigError(f"template {name} for {where}: {exc}") from exc
