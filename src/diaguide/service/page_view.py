"""What the physician page shows, built from a stored recommendation: the three parts of the
plan with each finding beside the medication it concerns, and the lab evidence with its trend."""

from __future__ import annotations

from typing import Any

from diaguide.records.schema import Finding, MedicationOrder, Plan, Visit
from diaguide.records.units import ANALYTES

# (analyte key in units.py, VisitSummary field holding its history)
EVIDENCE = (
    ("hba1c", "hba1c"),
    ("fasting_glucose", "fasting_glucose"),
    ("egfr", "egfr"),
    ("uacr", "uacr"),
    ("ldl", "ldl"),
    ("weight", "weight_kg"),
    ("systolic_bp", "systolic_bp"),
)

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "DiaGuide — diabetes outpatient assistant",
        "demo": "DEMO MODE — synthetic patients only, no login. Not for clinical use.",
        "pick": "Pick a sample patient",
        "paste": "…or paste a FHIR Bundle or Visit JSON",
        "go": "Recommend",
        "treatment": "Treatment",
        "goal": "Glycaemic goal",
        "labs": "Laboratory tests",
        "meds": "Medications",
        "action": "Action",
        "drug": "Drug",
        "dose": "Dose",
        "frequency": "Frequency",
        "why": "Why",
        "findings": "Safety findings",
        "other_findings": "Other safety findings",
        "cautions": "Cautions",
        "complexity": "Record complexity",
        "evidence": "Evidence",
        "test": "Test",
        "latest": "Latest",
        "trend": "Trend (earlier → latest)",
        "narrative": "Model narrative",
        "pending": "Being prepared — this page refreshes.",
        "feedback": "Your decision",
        "accept": "Accept",
        "modify": "Modify",
        "reject": "Reject",
        "reason": "Reason",
        "comment": "Comment",
        "save": "Save",
        "saved": "Saved. Thank you.",
        "login": "Log in",
        "logout": "Log out",
        "username": "Username",
        "password": "Password",
        "none": "none",
        "patient": "Patient",
        "back": "New patient",
        "error": "Could not read the record",
        "source_guideline": "Plan: DiaGuide guideline engine, safety-checked.",
        "source_submitted": "Plan: as submitted (physician or model), safety-checked.",
        "glass_title": "Not a record you created",
        "glass_explain": "You may open it only in an emergency or with another clinical reason. "
        "The access and your reason are recorded in the audit trail.",
        "glass_go": "Open with this reason (break glass)",
        "locked": "Too many failed logins. Try again later.",
        "refused": "Refused: the form did not come from this page. Reload the page and try again.",
    },
    "zh": {
        "title": "DiaGuide — 糖尿病门诊辅助",
        "demo": "演示模式 — 仅合成病例，无需登录。不可用于临床。",
        "pick": "选择示例患者",
        "paste": "……或粘贴 FHIR Bundle / Visit JSON",
        "go": "生成建议",
        "treatment": "治疗方案",
        "goal": "血糖控制目标",
        "labs": "检验检查",
        "meds": "用药",
        "action": "操作",
        "drug": "药物",
        "dose": "剂量",
        "frequency": "频次",
        "why": "理由",
        "findings": "安全提示",
        "other_findings": "其他安全提示",
        "cautions": "注意事项",
        "complexity": "病历复杂度",
        "evidence": "依据",
        "test": "项目",
        "latest": "最近值",
        "trend": "趋势（既往 → 最近）",
        "narrative": "模型说明",
        "pending": "正在生成，本页将自动刷新。",
        "feedback": "您的决定",
        "accept": "采纳",
        "modify": "修改",
        "reject": "拒绝",
        "reason": "原因",
        "comment": "备注",
        "save": "保存",
        "saved": "已保存，谢谢。",
        "login": "登录",
        "logout": "退出",
        "username": "用户名",
        "password": "密码",
        "none": "无",
        "patient": "患者",
        "back": "新患者",
        "error": "无法读取病历",
        "source_guideline": "方案来源：DiaGuide 指南引擎，已经安全核查。",
        "source_submitted": "方案来源：提交的方案（医生或模型），已经安全核查。",
        "glass_title": "不是您创建的病历",
        "glass_explain": "仅在紧急情况或有其他临床理由时才可打开。本次访问及理由将记录在审计日志中。",
        "glass_go": "说明理由后打开（紧急访问）",
        "locked": "登录失败次数过多，请稍后再试。",
        "refused": "已拒绝：表单不是从本页面提交的。请刷新页面后重试。",
    },
}
ACTION_ZH = {"start": "开始", "continue": "继续", "adjust": "调整", "stop": "停用"}


def _concerns(f: Finding, m: MedicationOrder) -> bool:
    drug = m.drug.lower()
    return any(d.lower() in drug or drug in d.lower() or d.lower() == m.drug_class for d in f.drugs if d)


def medication_rows(plan: Plan) -> tuple[list[dict[str, Any]], list[Finding]]:
    """Each medication with the findings about it; findings that name no planned drug are returned apart."""
    used: set[int] = set()
    rows = []
    for m in plan.medications:
        mine = [f for f in plan.findings if _concerns(f, m)]
        used.update(id(f) for f in mine)
        rows.append(
            {"order": m, "findings": sorted(mine, key=lambda f: ["critical", "warning", "info"].index(f.severity))}
        )
    return rows, [f for f in plan.findings if id(f) not in used]


def evidence(visit: Visit) -> list[dict[str, Any]]:
    """Latest value and the trend over the visit's history for each key analyte present."""
    out = []
    for key, field in EVIDENCE:
        analyte = ANALYTES[key]
        lab = visit.latest_lab(*analyte.loincs)
        latest = lab.value if lab else None
        if key == "weight" and latest is None:
            latest = visit.vitals.weight_kg or visit.patient.weight_kg
        if key == "systolic_bp" and latest is None:
            latest = visit.vitals.systolic_bp
        past = [(h.date, getattr(h, field)) for h in sorted(visit.history, key=lambda h: h.date)]
        past = [(d, v) for d, v in past if v is not None]
        if latest is None and not past:
            continue
        series = [v for _, v in past] + ([latest] if latest is not None else [])
        arrow = ""
        if len(series) >= 2:
            delta = series[-1] - series[0]
            arrow = "↑" if delta > 0 else ("↓" if delta < 0 else "→")
        out.append(
            {
                "name": analyte.name,
                "unit": analyte.unit,
                "latest": latest,
                "date": lab.date if lab else None,
                "trend": " → ".join(f"{v:g}" for v in series),
                "arrow": arrow,
            }
        )
    return out
