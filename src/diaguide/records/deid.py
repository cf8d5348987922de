"""De-identification of Visits: identifiers out, dates shifted per patient, English and Chinese.

Follows the HIPAA Safe Harbor list (45 CFR 164.514(b)(2)): names, addresses, dates (all
elements but the year, here shifted instead so intervals survive), phone numbers, emails,
URLs and IP addresses, medical record, social security and other identifying numbers, ages over 89. Chinese resident ID numbers
(GB 11643-1999: 17 digits + an ISO 7064 MOD 11-2 check character) are recognised by their
check character and birth date; other long digit runs (lab accession numbers ...) are
identifiers too and are replaced as `[NUMBER]`, so nothing hinges on the check digit alone.

Deterministic for one salt: the same patient gets the same pseudonym and the same date shift
in every file and run, so visits from separate exports still line up.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import hashlib
import hmac
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from diaguide.errors import ConfigError
from diaguide.records.schema import Visit

PLACEHOLDER = {
    "name": "[NAME]",
    "mrn": "[MRN]",
    "id_number": "[ID]",
    "phone": "[PHONE]",
    "email": "[EMAIL]",
    "address": "[ADDRESS]",
    "long_number": "[NUMBER]",
    "ssn": "[SSN]",
    "date": "[DATE]",
    "identifier": "[REDACTED]",
    "url": "[URL]",
    "ip": "[IP]",
}
MAX_AGE = 90  # Safe Harbor: ages over 89 are aggregated into "90 or older"

_HAN = "\u4e00-\u9fff"
# The most common Chinese surnames (about 85% of the population), compound ones first.
_SURNAMES = (
    "欧阳|司马|诸葛|上官|东方|皇甫|尉迟|公孙|慕容|长孙|令狐|夏侯|司徒|"
    "[王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟"
    "谭陆汪范金石廖贾夏韦付傅方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔汤常温康施文牛樊葛邢"
    "乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕季裴霍涂苗谷盛曲翁冉骆蓝路游辛靳管"
    "柴蒙鲍喻祁蒲房滕屈饶牟艾尤穆卓吉缪简项连芦麦褚娄窦戚岑景党宫费卜晏席卫米柏宗瞿桂佟臧闵苟邬边卞姬师栾隋商"
    "刁沙荣巫寇桑郎甄丛仲虞敖巩佘池查麻苑迟邝]"
)
# After 患者/病人 these start ordinary clinical prose, not a name ("患者于…", "患者高血压…").
_NOT_NAME = (
    "于因自无有近既今本平曾在已为诉以由经从及对服多反出现发感伴否主入来术外体口双右左全一二三四五六七八九十年男女血"
)
# ...and words that open with a surname character but are clinical prose ("患者陈述", "患者明显消瘦").
_NOT_NAME_WORDS = (
    "陈述|高龄|高热|高血|常规|明显|明确|尚可|时有|时常|全身|严重|黄疸|程度|管理|安静|方便|康复|应用|包括|任何|向来|成功"
    "|文化|温度|叶酸|白天|白细胞|符合|关节|平时|经常|饮食|毛发|万一|余"
)
_MONTHS = [m.lower() for m in calendar.month_name[1:]]
_MONTH_RE = r"\b(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\b"

_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"'，。；]+", re.IGNORECASE)
_IP = re.compile(r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])")
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
_MRN_LABEL = re.compile(
    r"((?i:MRN|MR\s*#|medical\s+record\s+(?:number|no\.?)|record\s+no\.?|account\s+(?:number|no\.?))"
    r"|病历号|住院号|门诊号|病案号|就诊卡号|医保卡?号|社保卡?号|患者ID|ID号|登记号)(\s*[:：#]?\s*)([A-Za-z0-9\-]{3,})"
)
_CODE = re.compile(r"(?<![A-Za-z0-9])[A-Z]{1,4}-?\d{6,}(?![A-Za-z0-9])")  # MZ2023050101, H-1234567
_RESIDENT_ID = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
_PHONES = [
    re.compile(r"(?<![\d+])(?:\+?86[\s\-]?)?1[3-9]\d[\s\-]?\d{4}[\s\-]?\d{4}(?!\d)"),  # Chinese mobile
    re.compile(r"(?<!\d)(?:\(0\d{2,3}\)\s?|0\d{2,3}[\s\-])\d{7,8}(?!\d)"),  # Chinese landline (010-12345678)
    re.compile(r"(?<![\d\w])(?:\+?1[\s.\-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.\-])\d{3}[\s.\-]\d{4}(?!\d)"),  # US
    re.compile(
        r"((?i:tel|phone|mobile|cell|fax)\.?|电话|手机|联系电话|联系方式|座机)(\s*[:：]?\s*)(\+?[\d\s\-()]{7,20}\d)"
    ),
]
# Two passes, words first: no output of one pass is a date the other reads, so nothing shifts twice.
_WORD_DATES = re.compile(
    rf"(?<!\d)(?P<dmy>(?P<dmy_d>\d{{1,2}})(?:st|nd|rd|th)?\s+(?P<dmy_m>{_MONTH_RE})\.?,?\s+(?P<dmy_y>\d{{4}}))(?!\d)"
    rf"|(?P<mdy>(?P<mdy_m>{_MONTH_RE})\.?\s+(?P<mdy_d>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<mdy_y>\d{{4}}))(?!\d)"
    rf"|(?P<my>(?P<my_m>{_MONTH_RE})\.?,?\s+(?P<my_y>\d{{4}}))(?!\d)",
    re.IGNORECASE,
)
_NUM_DATES = re.compile(
    r"(?P<zh>(?P<zh_y>\d{4})\s*年\s*(?P<zh_m>\d{1,2})\s*月\s*(?P<zh_d>\d{1,2})\s*(?P<zh_s>[日号])?)(?!\d)"
    r"|(?P<zhm>(?P<zhm_y>\d{4})\s*年\s*(?P<zhm_m>\d{1,2})\s*月)(?!\s*\d)"
    r"|(?<!\d)(?P<iso>(?P<iso_y>\d{4})(?P<iso_s>[-/.])(?P<iso_m>\d{1,2})(?P=iso_s)(?P<iso_d>\d{1,2}))(?!\.?\d)"
    r"|(?<![\d/])(?P<us>(?P<us_m>\d{1,2})/(?P<us_d>\d{1,2})/(?P<us_y>\d{4}|\d{2}))(?![\d/])"
    r"|(?<!\d)(?P<c>(?P<c_y>(?:19|20)\d{2})(?P<c_m>0[1-9]|1[0-2])(?P<c_d>0[1-9]|[12]\d|3[01]))(?!\d)"
)
_LETTERS = re.compile(r"[A-Za-z]{3}")
_AGES = [
    re.compile(r"(?<!\d)(\d{2,3})(\s*(?:岁|周岁|-year-old|-year old|\s*years? old|\s*yo\b|\s*y/o))", re.IGNORECASE),
    re.compile(r"((?:\b(?i:aged?)|年龄)\s*[:：]?\s*)(\d{2,3})(?!\d)"),
]
_SSN = re.compile(r"(?<![\d\-])\d{3}-\d{2}-\d{4}(?![\d\-])")
_LONG_NUMBER = re.compile(r"(?<![\d.])\d{9,}(?![\d.])")
_STREET = (
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Ter"
    r"|Parkway|Pkwy|Circle|Cir|Highway|Hwy|Square|Sq|Loop|Trail|Trl|Alley|Plaza|Crescent|Row|Pike)"
)
_ADDRESSES = [
    # labelled: keep the label, drop what follows up to the end of the clause
    re.compile(r"((?i:home address|address|addr\.?)\s*[:：]\s*)([^;\n。；\[]{4,80}?)(?=\.\s|[;\n。；\[]|\.?$)"),
    re.compile(r"((?i:lives at|living at|residing at|resides at)\s+)(\d[^;\n。；\[]{3,80}?)(?=\.\s|[;\n。；\[]|\.?$)"),
    re.compile(rf"((?:住址|地址|家住|现住|住在|居住于|居住地|户籍地?)\s*[:：]?\s*)([{_HAN}\dA-Za-z\-#号]{{3,40}})"),
    re.compile(
        rf"\b\d{{1,6}}\s+(?:[A-Z0-9][A-Za-z0-9'.\-]*\s+){{1,4}}{_STREET}\b\.?"
        r"(?:\s*,?\s*(?:Apt|Apartment|Suite|Ste|Unit|#)\.?\s*[A-Za-z0-9\-]+)?"
        r"(?:\s*,\s*[A-Z][A-Za-z]+(?:\s+[A-Z][A-Za-z]+){0,2})?(?:\s*,\s*[A-Z]{2})?(?:\s+\d{5}(?:-\d{4})?)?"
    ),
    re.compile(r"\b[A-Z][a-z]+(?:\s[A-Z][a-z]+)?,\s*[A-Z]{2}\s+\d{5}(?:-\d{4})?\b"),  # City, ST 12345
    re.compile(
        rf"(?:[{_HAN}]{{2,3}}(?:省|自治区))?(?:[{_HAN}]{{2,4}}市)?(?:[{_HAN}]{{2,3}}(?:区|县))?"
        rf"[{_HAN}\d]{{2,4}}(?:路|街|大道|大街|巷|弄|胡同)[\d一二三四五六七八九十百]+号"
        r"(?:\s*[\d\-]+(?:号楼|栋|幢|单元|楼|室))*"
    ),
    re.compile(rf"[{_HAN}]{{2,3}}(?:省|自治区)[{_HAN}]{{2,4}}市(?:[{_HAN}]{{2,3}}(?:区|县))?"),
    re.compile(rf"[{_HAN}]{{2,3}}市[{_HAN}]{{2,3}}(?:区|县)"),
]
_NAMES = [
    # (pattern, group holding the name); the rest of the match is kept
    (re.compile(rf"((?:姓名|病人姓名|患者姓名|家属|联系人|配偶|医师|医生|签名)\s*[:：]\s*)([{_HAN}·]{{2,5}})"), 2),
    (
        re.compile(
            rf"((?:患者|病人|病患|患儿|家属|配偶|丈夫|妻子|儿子|女儿|联系人)\s*[:：]?\s*)((?![{_NOT_NAME}]|{_NOT_NAME_WORDS})(?:{_SURNAMES})[{_HAN}]{{1,2}}?)"
            rf"(?=[\s,，。:：;；(（]|[男女因于自诉今来反多无有既现近平曾陪代述称带送同说表在]|$)"
        ),
        2,
    ),
    (re.compile(rf"(?<![{_HAN}])()((?:{_SURNAMES})[{_HAN}]{{1,2}})(?=\s*[,，]\s*[男女])"), 2),
    (re.compile(rf"()((?:{_SURNAMES})(?:某某|某|先生|女士|小姐|老先生|老太太))"), 2),
    (re.compile(r"(\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\.?\s+)([A-Z][A-Za-z'\-]+(?:\s+[A-Z][A-Za-z'\-]+){0,2})"), 2),
    # "Name: Jane Roe" / "Patient: ROE, JANE": after a colon one word is enough
    (
        re.compile(
            r"(\b(?i:patient\s+name|patient|name|pt)\s*[:：]\s*)([A-Z][A-Za-z'\-]+(?:,?\s+[A-Z][A-Za-z'\-]+){0,2})"
        ),
        2,
    ),
    # "Patient John Smith presents": without one, two capitalised words ("Patient Education" is not a name)
    (
        re.compile(
            r"(\b(?i:patient)\s+)((?!Education|Care|History|Instructions|Portal)[A-Z][a-z'\-]+\s+[A-Z][a-z'\-]+)"
        ),
        2,
    ),
]
# Strings that carry codes and vocabularies, never identifiers: left as they are.
_CODE_KEYS = frozenset({"loinc", "unit", "system", "code", "icd10", "drug_class", "sex", "language", "diagnoses"})
_ID_WEIGHTS = [pow(2, 17 - i, 11) for i in range(17)]  # ISO 7064 MOD 11-2


def valid_resident_id(number: str) -> bool:
    """True for a Chinese resident ID number (GB 11643-1999) with a correct check character and birth date."""
    if not re.fullmatch(r"\d{17}[\dXx]", number):
        return False
    check = "10X98765432"[sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True)) % 11]
    if number[17].upper() != check:
        return False
    try:
        born = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    return 1900 <= born.year <= dt.date.today().year


class Deidentifier:
    """Replaces identifiers in Visits and text. `counts` adds up what was replaced, by category.

    Args:
        salt: the secret that keys pseudonyms and date shifts; keep it out of the data.
        max_shift_days: dates move by 1..max_shift_days days, earlier or later, per patient.
    """

    def __init__(self, salt: str, max_shift_days: int = 365):
        if not salt:
            raise ConfigError("de-identification needs a secret salt (--salt or $DIAGUIDE_DEID_SALT)", field="salt")
        self._key = salt.encode("utf-8")
        self.max_shift_days = max_shift_days
        self.counts: Counter[str] = Counter()

    def _digest(self, kind: str, value: str) -> str:
        return hmac.new(self._key, f"{kind}\x00{value}".encode(), hashlib.sha256).hexdigest()

    def pseudonym(self, value: str, kind: str = "patient") -> str:
        """A salted hash standing in for an identifier: `P…` for patients, `V…` for visits."""
        return kind[0].upper() + self._digest(kind, value)[:16]

    def shift_days(self, patient_id: str) -> int:
        """The patient's date shift in days: never 0, the same for every date of the patient."""
        n = int(self._digest("date", patient_id)[:12], 16) % (2 * self.max_shift_days)
        return n - self.max_shift_days if n < self.max_shift_days else n - self.max_shift_days + 1

    def shift(self, date: dt.date, patient_id: str) -> dt.date:
        return date + dt.timedelta(days=self.shift_days(patient_id))

    def scrub(
        self,
        text: str,
        *,
        patient_id: str | None = None,
        known_names: Iterable[str] = (),
        identifiers: Iterable[str] = (),
        known_identifiers: Iterable[str] = (),
        counts: Counter[str] | None = None,
    ) -> str:
        """Free text with identifiers replaced by placeholders and dates shifted for `patient_id`.

        Without a patient id, dates become `[DATE]`. `known_names` (from the source record)
        `identifiers` (its raw ids) and `known_identifiers` (ID number, phone, address columns of
        the source) are removed wherever they appear, pattern or not.
        """
        if not text:
            return text
        tally = counts if counts is not None else Counter()
        ids = tuple(sorted({i.strip() for i in identifiers if i and len(i.strip()) >= 4}))
        text = _known(text, ids, "mrn", tally)
        text = _known(text, tuple(sorted({v.strip() for v in known_identifiers if v})), "identifier", tally)
        text = _known(text, tuple(sorted(set(_name_parts(known_names)))), "name", tally)
        offset = self.shift_days(patient_id) if patient_id else None
        text, found = _scrub_patterns(text, offset)
        tally.update(dict(found))
        if counts is None:
            self.counts.update(tally)
        return text

    def deidentify_visit(
        self, visit: Visit, *, known_names: Iterable[str] = (), known_identifiers: Iterable[str] = ()
    ) -> tuple[Visit, Counter[str]]:
        """A de-identified copy of the visit and the count of what was replaced in it.

        Ids become salted hashes; every date (visit, labs, medications, history) moves by the
        patient's shift; every free-text string is scrubbed; an age over 89 becomes 90.
        `known_names` and `known_identifiers` (from the source record) go wherever they appear.
        """
        counts: Counter[str] = Counter()
        pid = visit.patient_id
        ids = {pid, visit.visit_id, *(h.visit_id for h in visit.history if h.visit_id)}
        scrub = functools.partial(
            self.scrub,
            patient_id=pid,
            known_names=list(known_names),
            identifiers=ids,
            known_identifiers=list(known_identifiers),
            counts=counts,
        )
        shift = dt.timedelta(days=self.shift_days(pid))

        def walk(value: Any, key: str = "") -> Any:
            if isinstance(value, dict):
                out = {k: walk(v, k) for k, v in value.items()}
                if out.get("system") == "text" and isinstance(out.get("code"), str):
                    out["code"] = scrub(out["code"])
                return out
            if isinstance(value, list):
                return [walk(v, key) for v in value]
            if key == "visit_id" and value:
                counts["visit_id"] += 1
                return self.pseudonym(str(value), "visit")
            if isinstance(value, dt.date):
                counts["date"] += 1
                return value + shift
            if isinstance(value, str) and key not in _CODE_KEYS:
                return scrub(value)
            return value

        data = walk(visit.model_dump(exclude={"patient_id"}))
        data["patient_id"] = self.pseudonym(pid, "patient")
        counts["patient_id"] += 1
        age = data["patient"].get("age")
        if age is not None and age > MAX_AGE - 1:
            data["patient"]["age"] = MAX_AGE
            counts["age"] += 1
        self.counts.update(counts)
        return Visit.model_validate(data), counts


@functools.lru_cache(maxsize=1024)
def _known_pattern(values: tuple[str, ...]) -> re.Pattern[str] | None:
    """One alternation of known values, longest first; ASCII ones as whole words in any case."""
    parts = []
    for value in sorted((v for v in values if len(v) >= 2), key=len, reverse=True):
        part = re.escape(value)
        if value.isascii():  # "Smith" but not "Smithfield"
            part = rf"(?i:(?<![A-Za-z0-9]){part}(?![A-Za-z0-9]))"
        parts.append(part)
    return re.compile("|".join(parts)) if parts else None


def _known(text: str, values: tuple[str, ...], kind: str, tally: Counter[str]) -> str:
    lowered = text.lower()
    present = tuple(v for v in values if v.lower() in lowered)  # compile only for values that occur
    pattern = _known_pattern(present) if present else None
    if pattern is None:
        return text
    text, n = pattern.subn(PLACEHOLDER[kind], text)
    tally[kind] += n
    return text


# Clinical records repeat short strings ("复诊", "bid", a chief complaint echoed in history):
# the pattern pass is a pure function of (text, shift), so it is computed once per pair.
@functools.lru_cache(maxsize=1 << 15)
def _scrub_patterns(text: str, offset: int | None) -> tuple[str, tuple[tuple[str, int], ...]]:
    tally: Counter[str] = Counter()
    if "@" in text:
        text = _sub(_EMAIL, text, "email", tally)
    if "://" in text or "www." in text.lower():
        text = _sub(_URL, text, "url", tally)
    if any(c.isdigit() for c in text):
        text = _sub(_MRN_LABEL, text, "mrn", tally, group=3)
        text = _RESIDENT_ID.sub(lambda m: _ident(m, tally), text)
        text = _sub(_CODE, text, "mrn", tally)
        text = _sub(_SSN, text, "ssn", tally)
        text = _sub(_IP, text, "ip", tally)
        for pattern in _PHONES:
            text = _sub(pattern, text, "phone", tally, group=3 if pattern.groups == 3 else 0)
        if _LETTERS.search(text):
            text = _WORD_DATES.sub(lambda m: _shift_match(m, offset, tally), text)
        text = _NUM_DATES.sub(lambda m: _shift_match(m, offset, tally), text)
        text = _AGES[0].sub(lambda m: _cap_age(m, 1, tally), text)
        text = _AGES[1].sub(lambda m: _cap_age(m, 2, tally), text)
        text = _sub(_LONG_NUMBER, text, "long_number", tally)
    for pattern in _ADDRESSES:
        text = _sub(pattern, text, "address", tally, group=2 if pattern.groups == 2 else 0)
    if len(text) > 1:
        for pattern, group in _NAMES:
            text = _sub(pattern, text, "name", tally, group=group)
    return text, tuple(tally.items())


def _name_parts(names: Iterable[str]) -> list[str]:
    """A full name and, for Western names, each part of it ("John Smith" -> also "John", "Smith")."""
    out = []
    for name in names:
        name = name.strip()
        if not name:
            continue
        out.append(name)
        if " " in name or "," in name:
            out += [p for p in re.split(r"[\s,]+", name) if len(p) >= 2 and p.rstrip(".").lower() not in _TITLES]
    return out


_TITLES = {"mr", "mrs", "ms", "miss", "dr", "prof", "jr", "sr", "ii", "iii"}


def _sub(pattern: re.Pattern[str], text: str, kind: str, tally: Counter[str], group: int = 0) -> str:
    def replace(m: re.Match[str]) -> str:
        tally[kind] += 1
        if group == 0:
            return PLACEHOLDER[kind]
        return m.string[m.start() : m.start(group)] + PLACEHOLDER[kind] + m.string[m.end(group) : m.end()]

    return pattern.sub(replace, text)


def _ident(m: re.Match[str], tally: Counter[str]) -> str:
    kind = "id_number" if valid_resident_id(m[0]) else "long_number"
    tally[kind] += 1
    return PLACEHOLDER[kind]


def _cap_age(m: re.Match[str], group: int, tally: Counter[str]) -> str:
    age = int(m[group])
    if not MAX_AGE - 1 < age <= 130:
        return m[0]
    tally["age"] += 1
    return m.string[m.start() : m.start(group)] + str(MAX_AGE) + m.string[m.end(group) : m.end()]


def _month(name: str) -> int:
    key = name.lower().rstrip(".")[:3]
    return [m[:3] for m in _MONTHS].index(key) + 1


def _shift_match(m: re.Match[str], offset: int | None, tally: Counter[str]) -> str:
    kind = next(k for k in ("dmy", "mdy", "my", "zh", "zhm", "iso", "us", "c") if m.groupdict().get(k))
    g = {name[len(kind) + 1 :]: value for name, value in m.groupdict().items() if name.startswith(kind + "_")}
    month = _month(g["m"]) if kind in ("dmy", "mdy", "my") else int(g["m"])
    year = int(g["y"]) if len(g["y"]) == 4 else 2000 + int(g["y"])
    # month-year forms carry no day: shift their middle so the month moves like the others
    day = int(g["d"]) if "d" in g else 15
    day_first = kind == "us" and month > 12 >= day  # 23/05/2023 is day/month (European order)
    if day_first:
        month, day = day, month
    try:
        date = dt.date(year, month, day)
    except ValueError:
        if not 1900 <= year <= 2100:
            return m[0]  # "1234.56.78" is no date
        tally["date"] += 1  # a date with a typo ("2023-02-30") still dates the patient
        return PLACEHOLDER["date"]
    tally["date"] += 1
    if offset is None:
        return PLACEHOLDER["date"]
    new = date + dt.timedelta(days=offset)
    if kind in ("dmy", "mdy", "my"):
        word = calendar.month_name[new.month] if len(g["m"].rstrip(".")) > 3 else calendar.month_abbr[new.month]
        text = {
            "dmy": f"{new.day} {word} {new.year}",
            "mdy": f"{word} {new.day}, {new.year}",
            "my": f"{word} {new.year}",
        }[kind]
    elif kind == "zh":
        text = f"{new.year}年{new.month}月{new.day}{g['s'] or ''}"
    elif kind == "zhm":
        text = f"{new.year}年{new.month}月"
    elif kind == "iso":
        text = f"{new.year}{g['s']}{new.month:0{len(g['m'])}d}{g['s']}{new.day:0{len(g['d'])}d}"
    elif kind == "us":
        year = str(new.year) if len(g["y"]) == 4 else f"{new.year % 100:02d}"
        first, second = (new.day, new.month) if day_first else (new.month, new.day)
        text = f"{first:0{len(g['m'])}d}/{second:0{len(g['d'])}d}/{year}"
    else:
        text = f"{new:%Y%m%d}"
    return text
