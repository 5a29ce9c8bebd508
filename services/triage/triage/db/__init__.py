"""Triage's SQL, one small typed function per statement, by topic (over 400 lines as one module):
assignment (directory copy, duty, open items), decisions (decisions and repeats), alerts (early
warning), learning (rules, models, corrections). `from triage import db; db.<function>` reads as
before."""

from triage.db.alerts import (
    alerts as alerts,
)
from triage.db.alerts import (
    cluster_members as cluster_members,
)
from triage.db.alerts import (
    repeat_members as repeat_members,
)
from triage.db.alerts import (
    thresholds as thresholds,
)
from triage.db.alerts import (
    trend_counts as trend_counts,
)
from triage.db.alerts import (
    upsert_alert as upsert_alert,
)
from triage.db.assignment import (
    assignment as assignment,
)
from triage.db.assignment import (
    candidates as candidates,
)
from triage.db.assignment import (
    close_item as close_item,
)
from triage.db.assignment import (
    is_confidential_handler as is_confidential_handler,
)
from triage.db.assignment import (
    move_item as move_item,
)
from triage.db.assignment import (
    record_assignment as record_assignment,
)
from triage.db.assignment import (
    staff_station as staff_station,
)
from triage.db.assignment import (
    station_settings as station_settings,
)
from triage.db.assignment import (
    team_rules as team_rules,
)
from triage.db.assignment import (
    use_custom_plans as use_custom_plans,
)
from triage.db.assignment import (
    waiting_for_officer as waiting_for_officer,
)
from triage.db.decisions import (
    add_fingerprint as add_fingerprint,
)
from triage.db.decisions import (
    change_exclusions as change_exclusions,
)
from triage.db.decisions import (
    complaints_naming as complaints_naming,
)
from triage.db.decisions import (
    decision as decision,
)
from triage.db.decisions import (
    duplicate_candidates as duplicate_candidates,
)
from triage.db.decisions import (
    record_decision as record_decision,
)
from triage.db.decisions import (
    record_merge as record_merge,
)
from triage.db.learning import (
    activate_model as activate_model,
)
from triage.db.learning import (
    active_model_version as active_model_version,
)
from triage.db.learning import (
    active_regex_patterns as active_regex_patterns,
)
from triage.db.learning import (
    add_rule as add_rule,
)
from triage.db.learning import (
    corrections as corrections,
)
from triage.db.learning import (
    deactivate_rule as deactivate_rule,
)
from triage.db.learning import (
    deployment_rules as deployment_rules,
)
from triage.db.learning import (
    list_rules as list_rules,
)
from triage.db.learning import (
    lock_seed_training as lock_seed_training,
)
from triage.db.learning import (
    model_artifact as model_artifact,
)
from triage.db.learning import (
    model_for_report as model_for_report,
)
from triage.db.learning import (
    model_signed as model_signed,
)
from triage.db.learning import (
    models as models,
)
from triage.db.learning import (
    replace_artifact as replace_artifact,
)
from triage.db.learning import (
    review_thresholds as review_thresholds,
)
from triage.db.learning import (
    rule_slot_free as rule_slot_free,
)
from triage.db.learning import (
    save_model as save_model,
)
from triage.db.learning import (
    store_correction as store_correction,
)
