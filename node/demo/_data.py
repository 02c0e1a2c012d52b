"""The demo's federation: three departments of 石家庄市, their datasets, policies and records.

Department codes are unified social credit codes of the government-agency form
(``1`` registration by the establishment office, ``1`` organ, the division, an
organisation code, the GB 32100 check character). Person records carry real
GB/T 2260 codes of 石家庄市 and identity numbers with their GB 11643 check characters.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Department",
    "PSB",
    "HRSS",
    "COUNTY",
    "DEPARTMENTS",
    "PURPOSE",
    "SCENARIO",
    "REQUESTED_ITEMS",
    "PIPL_34",
    "PIPL_BASIC",
    "SOCIAL_INSURANCE_81",
    "datasets_for",
    "seed_people",
    "seed_enrollments",
    "identity_number",
]


@dataclass(frozen=True)
class Department:
    key: str  # the node's folder under nodes/
    name: str  # 石家庄市公安局
    short: str  # 市公安局 (how the narration calls it)
    code: str  # unified social credit code
    level: str  # city | county
    division: str  # GB/T 2260


PSB = Department("psb", "石家庄市公安局", "市公安局", "11130100000014001U", "city", "130100")
HRSS = Department("hrss", "石家庄市人力资源和社会保障局", "市人社局", "11130100000014002Y", "city", "130100")
COUNTY = Department("county", "正定县民政局", "县民政局", "11130123000014003C", "county", "130123")
DEPARTMENTS = (PSB, HRSS, COUNTY)

PURPOSE = "社会保险参保资格审核"
SCENARIO = "城乡居民基本养老保险参保资格核验"
REQUESTED_ITEMS = ("name", "identityNumber", "sex", "birthDate", "householdDivision")

PIPL_34 = "《中华人民共和国个人信息保护法》第三十四条"
PIPL_BASIC = "《中华人民共和国个人信息保护法》第六条、第二十八条"
SOCIAL_INSURANCE_81 = "《中华人民共和国社会保险法》第八十一条"


def _catalog(title_zh: str, title_en: str, description: str, code: str, sharing: str, basis: str = "",
             conditions: str = "", keywords: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {"title_zh": title_zh, "title_en": title_en, "description": description,
                           "resource_code": code, "update_cycle": "daily", "sharing_type": sharing,
                           "sharing_method": "系统对接", "keywords": list(keywords)}
    if basis:
        out["sharing_basis"] = basis
    if conditions:
        out["sharing_conditions"] = conditions
    return out


def datasets_for(dept: Department, *, kafka: bool) -> list[dict[str, Any]]:
    """The ``[[datasets]]`` of a department's node.toml."""
    if dept is PSB:
        return [
            {"id": "population-basic", "record_type": "Person", "kafka_publish": kafka,
             "catalog": _catalog("人口基础信息（基本项）", "Population: basic items",
                                 "石家庄市户籍人口的姓名、性别、民族、户籍地，向全市政务部门无条件共享。",
                                 "1010100/000001", "unconditional", keywords=("人口", "基础信息"))},
            {"id": "population", "record_type": "Person", "kafka_publish": kafka,
             "catalog": _catalog("人口基础信息（完整）", "Population: full record",
                                 "石家庄市户籍人口完整信息（含公民身份号码、出生日期），依申请有条件共享。",
                                 "1010100/000002", "conditional", PIPL_34,
                                 "仅向经审核同意的部门提供，限于申请的使用用途和信息项", ("人口", "身份信息"))},
        ]
    if dept is HRSS:
        return [
            {"id": "insurance-enrollment", "record_type": "SocialInsuranceEnrollment", "kafka_publish": False,
             "catalog": _catalog("社会保险参保信息", "Social insurance enrollment",
                                 "石家庄市社会保险参保人员的险种、参保状态、起始日期和缴费基数。",
                                 "1020300/000001", "conditional", SOCIAL_INSURANCE_81,
                                 "仅向经审核同意的部门提供，用于法定职责范围内的核验", ("社保", "参保"))},
        ]
    return [
        {"id": "household-register", "record_type": "Person", "kafka_publish": False,
         "catalog": _catalog("正定县户籍人口登记信息", "Zhengding county household register",
                             "正定县户籍人口登记表经适配器映射到标准后的记录，逐级上报市公安局。",
                             "1010100/000003", "conditional", PIPL_34,
                             "仅向上级主管部门及经审核同意的部门提供", ("人口", "县级"))},
    ]


# ---- records ------------------------------------------------------------------------------
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def identity_number(division: str, birth: dt.date, seq: int) -> str:
    body = f"{division}{birth:%Y%m%d}{seq:03d}"
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, _WEIGHTS, strict=True)) % 11]


# name, district, birth date, sequence (odd: male), ethnicity
_PEOPLE = (
    ("赵建国", "130102", dt.date(1962, 3, 14), 31, "01"),
    ("钱秀兰", "130104", dt.date(1958, 11, 2), 42, "01"),
    ("孙志强", "130105", dt.date(1971, 6, 25), 17, "01"),
    ("李桂英", "130108", dt.date(1949, 1, 30), 86, "03"),
    ("周海涛", "130109", dt.date(1983, 9, 9), 55, "01"),
    ("吴丽娟", "130110", dt.date(1990, 12, 1), 24, "01"),
    ("郑国庆", "130102", dt.date(1966, 10, 1), 73, "11"),
    ("王淑珍", "130104", dt.date(1955, 4, 18), 68, "01"),
    ("冯晓东", "130105", dt.date(1979, 7, 7), 39, "01"),
    ("陈玉梅", "130108", dt.date(1969, 2, 28), 10, "01"),
    ("褚建华", "130109", dt.date(1975, 5, 20), 91, "01"),
    ("卫红霞", "130110", dt.date(1987, 8, 16), 26, "01"),
)


def seed_people() -> list[dict[str, Any]]:
    """市公安局's own register: twelve residents of 石家庄市's districts."""
    out = []
    for name, division, birth, seq, ethnicity in _PEOPLE:
        number = identity_number(division, birth, seq)
        out.append({"id": f"sjz-{division}-{seq:03d}", "type": "Person", "identityNumber": number, "name": name,
                    "sex": "1" if seq % 2 else "2", "ethnicity": ethnicity, "birthDate": birth.isoformat(),
                    "householdDivision": division})
    return out


def seed_enrollments() -> list[dict[str, Any]]:
    """市人社局's enrollments of the same residents (pension and medical insurance)."""
    out = []
    for i, person in enumerate(seed_people()):
        number = person["identityNumber"]
        born = dt.date.fromisoformat(person["birthDate"])
        start = dt.date(max(born.year + 20, 1995), 1 + i % 12, 1)
        employed = i % 3 != 2
        pension, medical = ("110", "310") if employed else ("170", "390")
        base = f"{6000 + 350 * i}.00" if employed else "0.00"
        out.append({"id": f"sie-{number}-{pension}", "type": "SocialInsuranceEnrollment", "identityNumber": number,
                    "insuranceType": pension, "enrollmentStatus": "1" if i != 5 else "2",
                    "startDate": start.isoformat(), "contributionBase": base})
        if i % 2 == 0:
            out.append({"id": f"sie-{number}-{medical}", "type": "SocialInsuranceEnrollment",
                        "identityNumber": number, "insuranceType": medical, "enrollmentStatus": "1",
                        "startDate": start.isoformat(), "contributionBase": base})
    return out


