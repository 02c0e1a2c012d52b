from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from node.policy import DatasetPolicy, Grant, MaskRule, ResponsibilityList, SharingType

EXAMPLES = Path(__file__).resolve().parents[2] / "ontology" / "examples" / "policy"

# valid unified social credit codes (GB 32100 check characters computed)
PROVIDER = "91110000600037341L"
RSJ = "11110000000000001R"  # 市人社局: holds a grant
MZJ = "11110000000000002W"  # 市民政局: holds an expired grant
YBJ = "11440300MB00000035"  # 市医保局: member without grants
OUTSIDER = "12330100470000004N"  # not a federation member
MEMBERS = frozenset({PROVIDER, RSJ, MZJ, YBJ})

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
KEY = b"node-masking-key-for-tests-only!"

PERSON = {
    "id": "p-0001",
    "type": "Person",
    "identityNumber": "11010519491231002X",
    "name": "张三丰",
    "sex": "1",
    "ethnicity": "01",
    "birthDate": "1949-12-31",
    "householdDivision": "110105",
}


@pytest.fixture
def policy() -> ResponsibilityList:
    """One dataset of each sharing type; the conditional one has a live and an expired grant."""
    rsj = Grant.create(
        dataset_id="101/000001",
        consumer_code=RSJ,
        items=["identityNumber", "name", "birthDate"],
        purposes=["社会保险参保资格审核", "养老金发放"],
        until=date(2026, 12, 31),
        masking={"identityNumber": MaskRule.keep(6, 4)},
        basis="《社会保险法》",
    )
    mzj = Grant.create(
        dataset_id="101/000001",
        consumer_code=MZJ,
        items=["name", "householdDivision"],
        purposes=["最低生活保障资格核查"],
        until=date(2025, 12, 31),
    )
    return ResponsibilityList(
        (
            DatasetPolicy(
                "101/000001",
                SharingType.CONDITIONAL,
                title="人口基础信息",
                basis=("《个人信息保护法》第三十四条",),
                withheld=("ethnicity",),
                grants=(rsj, mzj),
            ),
            DatasetPolicy(
                "102/000001",
                SharingType.UNCONDITIONAL,
                title="法人单位基础信息",
                withheld=("registrationDivision",),
                masking=(("legalRepresentative", MaskRule.keep(1, 0)),),
                basis=("《个人信息保护法》",),
            ),
            DatasetPolicy("103/000001", SharingType.UNCONDITIONAL, title="行政区划"),
            DatasetPolicy(
                "105/000009", SharingType.NOT_SHARED, title="涉密人员信息", basis=("《保守国家秘密法》",)
            ),
        ),
        provider_code=PROVIDER,
        title="测试清单",
    )
