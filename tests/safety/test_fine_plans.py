"""Complete plans a careful physician would write raise no warning and no critical: false alarms
cost trust ("at most one false alarm on plans that are fine")."""

from __future__ import annotations

import pytest

from diaguide.safety.checker import check

FINE = [
    (
        "T2 first intensification with SGLT2i",
        {
            "age": 58,
            "egfr": 85,
            "hba1c": 7.8,
            "dx": ("E11.9", "I10", "E78.5"),
            "meds": (
                ("metformin", "1000 mg bid"),
                ("lisinopril", "10 mg qd"),
                ("atorvastatin", "20 mg qd"),
                ("aspirin", "81 mg qd"),
            ),
        },
        [
            ("metformin", "continue", "1000 mg bid"),
            ("empagliflozin", "start", "10 mg qd"),
            ("lisinopril", "continue", "10 mg qd"),
            ("atorvastatin", "continue", "20 mg qd"),
        ],
        "ada",
    ),
    (
        "older adult, obesity, CKD 3a: GLP-1 RA added",
        {
            "age": 66,
            "sex": "female",
            "egfr": 55,
            "hba1c": 8.2,
            "dx": ("E11.22", "N18.31", "E66.9", "I10"),
            "meds": (
                ("metformin", "1000 mg bid"),
                ("glipizide", "5 mg qd"),
                ("losartan", "50 mg qd"),
                ("hydrochlorothiazide", "12.5 mg qd"),
            ),
        },
        [
            ("metformin", "continue", "1000 mg bid"),
            ("semaglutide", "start", "0.25 mg weekly"),
            ("glipizide", "continue", "5 mg qd"),
            ("losartan", "continue", "50 mg qd"),
        ],
        "ada",
    ),
    (
        "China, acarbose added to metformin",
        {
            "age": 52,
            "egfr": 95,
            "hba1c": 7.6,
            "language": "zh",
            "dx": ("E11.9",),
            "meds": (("二甲双胍", "0.5g tid"), ("阿托伐他汀钙片", "20mg qn")),
        },
        [
            ("二甲双胍", "continue", "0.5g tid"),
            ("阿卡波糖", "start", "50mg tid"),
            ("阿托伐他汀", "continue", "20mg qn"),
        ],
        "cds",
    ),
    (
        "HbA1c 10.5: basal insulin started",
        {
            "age": 45,
            "sex": "female",
            "egfr": 90,
            "hba1c": 10.5,
            "dx": ("E11.65",),
            "meds": (("metformin", "1000 mg bid"),),
        },
        [("metformin", "continue", "1000 mg bid"), ("insulin glargine", "start", "10 U qhs")],
        "ada",
    ),
    (
        "type 1 basal-bolus",
        {
            "age": 30,
            "egfr": 110,
            "hba1c": 7.4,
            "dx": ("E10.9",),
            "meds": (("insulin glargine", "22 U qd"), ("insulin aspart", "6 U tid")),
        },
        [("insulin glargine", "continue", "22 U qd"), ("insulin aspart", "continue", "6 U tid with meals")],
        "ada",
    ),
    (
        "heart failure and CKD 3b: SGLT2i",
        {
            "age": 70,
            "egfr": 40,
            "hba1c": 7.9,
            "dx": ("E11.22", "I50.22", "N18.32"),
            "meds": (
                ("metformin", "500 mg bid"),
                ("metoprolol succinate", "50 mg qd"),
                ("furosemide", "20 mg qd"),
                ("sacubitril/valsartan", "49/51 mg bid"),
                ("atorvastatin", "40 mg qd"),
            ),
        },
        [
            ("metformin", "continue", "500 mg bid"),
            ("dapagliflozin", "start", "10 mg qd"),
            ("atorvastatin", "continue", "40 mg qd"),
        ],
        "ada",
    ),
    (
        "older adult stable on basal insulin",
        {
            "age": 78,
            "sex": "female",
            "egfr": 62,
            "hba1c": 7.6,
            "dx": ("E11.9", "I10"),
            "meds": (("Lantus", "14 U qd"), ("metformin", "500 mg bid"), ("amlodipine", "5 mg qd")),
        },
        [("Lantus", "continue", "14 U qd"), ("metformin", "continue", "500 mg bid")],
        "ada",
    ),
    (
        "Chinese brand names, DPP-4i added",
        {"age": 61, "egfr": 78, "hba1c": 7.4, "language": "zh", "dx": ("E11.9",), "meds": (("格华止", "0.5g bid"),)},
        [("格华止", "adjust", "0.5g tid"), ("捷诺维", "start", "100mg qd")],
        "cds",
    ),
]


@pytest.mark.parametrize(("visit_kw", "orders", "region"), [c[1:] for c in FINE], ids=[c[0] for c in FINE])
def test_fine_plan_has_no_warning_or_critical(visit_factory, plan_factory, visit_kw, orders, region) -> None:
    findings = check(visit_factory(**visit_kw), plan_factory(*orders), region)
    alarms = [(f.rule_id, f.message) for f in findings if f.severity != "info"]
    assert alarms == []
