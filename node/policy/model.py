"""The responsibility list (共享责任清单) as immutable values.

A :class:`ResponsibilityList` holds one :class:`DatasetPolicy` per dataset (信息资源):
its sharing type, sharing conditions and methods, the legal basis, its information
items, the items withheld from everyone, and, for conditional datasets, the
:class:`Grant` s (who may receive which items, for which purposes, until when,
masked how).

Rules the model keeps (every constructor checks them, so a list in memory is
always one the SHACL shapes accept):

- conditional (有条件共享) and not-shared (不予共享) datasets cite a basis (依据), and so
  does any dataset that withholds items;
- only conditional datasets carry grants; a not-shared dataset has no withheld
  items or masking (nothing of it is shared);
- an unconditional dataset may withhold items (``withheld``) from everyone and may
  mask items for everyone (``masking``); a conditional dataset may withhold items
  too (no grant may cover them) and masks per grant;
- a grant names at least one item and one purpose, never ``id``/``type`` as items
  (they are always delivered), never a withheld item, and masks only items it grants
  (plus ``id``, which may only be hashed).

All operations return new values; nothing is mutated.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from enum import StrEnum

from node.errors import InputError, NotFound

from ._ids import (
    check_credit_code,
    check_dataset_id,
    check_item_key,
    make_grant_id,
    normalise_text,
)
from ._standard import check_record_key, item_label, method_notation
from .masking import MaskMethod, MaskRule

__all__ = ["SharingType", "Grant", "DatasetPolicy", "ResponsibilityList"]

log = logging.getLogger(__name__)

MaskTable = tuple[tuple[str, MaskRule], ...]


class SharingType(StrEnum):
    """共享类型, by its code-list notation (https://w3id.org/shulian/code/sharing-type/<n>)."""

    UNCONDITIONAL = "1"
    CONDITIONAL = "2"
    NOT_SHARED = "3"

    @property
    def label_zh(self) -> str:
        return _TYPE_ZH[self]

    @property
    def label_en(self) -> str:
        return _TYPE_EN[self]

    @classmethod
    def parse(cls, text: str) -> SharingType:
        """Accept the notation, the Chinese name (or its short form) or the English name."""
        key = normalise_text(text).lower().replace("_", " ").replace("-", " ")
        found = _TYPE_ALIASES.get(key)
        if found is None:
            raise ValueError(
                f"sharing type {text!r} not understood; write 1/无条件共享, 2/有条件共享 or 3/不予共享"
            )
        return found


_TYPE_ZH = {
    SharingType.UNCONDITIONAL: "无条件共享",
    SharingType.CONDITIONAL: "有条件共享",
    SharingType.NOT_SHARED: "不予共享",
}
_TYPE_EN = {
    SharingType.UNCONDITIONAL: "unconditional",
    SharingType.CONDITIONAL: "conditional",
    SharingType.NOT_SHARED: "not shared",
}
_TYPE_ALIASES: dict[str, SharingType] = {}
for _t, _names in {
    SharingType.UNCONDITIONAL: ("1", "无条件共享", "无条件", "unconditional"),
    SharingType.CONDITIONAL: ("2", "有条件共享", "有条件", "conditional"),
    SharingType.NOT_SHARED: ("3", "不予共享", "不共享", "不予", "not shared", "notshared", "none"),
}.items():
    for _n in _names:
        _TYPE_ALIASES[_n] = _t


def _mask_table(masking: Mapping[str, MaskRule] | MaskTable) -> MaskTable:
    pairs = masking.items() if isinstance(masking, Mapping) else masking
    table = tuple(sorted(pairs, key=lambda kv: kv[0]))
    keys = [k for k, _ in table]
    if len(set(keys)) != len(keys):
        raise InputError(f"an item has two masking rules: {sorted(keys)}")
    return table


def _texts(values: Iterable[str]) -> tuple[str, ...]:
    """Free texts (basis, conditions, methods) as written: trimmed, inner whitespace collapsed."""
    return tuple(sorted({t for t in (" ".join(v.split()) for v in values if v) if t}))


def _purposes(values: Iterable[str]) -> tuple[str, ...]:
    """Purposes are compared, so they are NFKC-normalised (full-width forms folded) as well."""
    return tuple(sorted({t for t in (normalise_text(v) for v in values if v) if t}))


def _bad(where: str, exc: ValueError) -> InputError:
    return InputError(f"{where}: {exc}")


def _item(key: str) -> str:
    """An information item: a record key (not id/type) that the standard defines."""
    return check_record_key(check_item_key(key))


@dataclass(frozen=True, slots=True)
class Grant:
    """One permission (授权): a consumer may receive ``items`` of a dataset for ``purposes`` until ``until``."""

    grant_id: str
    dataset_id: str
    consumer_code: str
    items: tuple[str, ...]
    purposes: tuple[str, ...]
    until: date | None
    masking: MaskTable = ()
    basis: str | None = None
    request_id: str | None = None

    def __post_init__(self) -> None:
        where = f"grant {self.grant_id or '(new)'} on dataset {self.dataset_id!r}"
        try:
            object.__setattr__(self, "dataset_id", check_dataset_id(self.dataset_id))
            object.__setattr__(self, "consumer_code", check_credit_code(self.consumer_code, "consumer"))
            items = tuple(sorted({_item(i) for i in self.items}))
        except ValueError as exc:
            raise _bad(where, exc) from exc
        if not items:
            raise InputError(f"{where}: a grant must name at least one item")
        purposes = _purposes(self.purposes)
        if not purposes:
            raise InputError(f"{where}: a grant must name at least one purpose (使用用途)")
        masking = _mask_table(self.masking)
        for key, rule in masking:
            if key == "id":
                if rule.method is not MaskMethod.HASH:
                    raise InputError(
                        f"{where}: the record id can only be masked with hash (it must stay unique)"
                    )
            elif key not in items:
                raise InputError(f"{where}: masking for {key!r}, which the grant does not cover")
        basis = " ".join(self.basis.split()) if self.basis else None
        object.__setattr__(self, "items", items)
        object.__setattr__(self, "purposes", purposes)
        object.__setattr__(self, "masking", masking)
        object.__setattr__(self, "basis", basis or None)
        if not self.grant_id:
            object.__setattr__(
                self, "grant_id", make_grant_id(self.consumer_code, purposes, self.until, basis)
            )

    @classmethod
    def create(
        cls,
        *,
        dataset_id: str,
        consumer_code: str,
        items: Iterable[str],
        purposes: Iterable[str],
        until: date | None,
        masking: Mapping[str, MaskRule] | None = None,
        basis: str | None = None,
        request_id: str | None = None,
        grant_id: str = "",
    ) -> Grant:
        return cls(
            grant_id=grant_id,
            dataset_id=dataset_id,
            consumer_code=consumer_code,
            items=tuple(items),
            purposes=tuple(purposes),
            until=until,
            masking=_mask_table(masking or {}),
            basis=basis,
            request_id=request_id,
        )

    @property
    def masking_map(self) -> dict[str, MaskRule]:
        return dict(self.masking)

    def covers_purpose(self, purpose: str) -> bool:
        return normalise_text(purpose) in self.purposes

    def valid_on(self, day: date) -> bool:
        """True if the grant is in force on ``day`` (``until`` is inclusive)."""
        return self.until is None or day <= self.until


@dataclass(frozen=True, slots=True)
class DatasetPolicy:
    """The sharing attributes of one dataset (信息资源) and its grants."""

    dataset_id: str
    sharing_type: SharingType
    title: str | None = None
    items: tuple[str, ...] = ()
    item_labels: tuple[tuple[str, str], ...] = ()  # names this list gives items (else the standard's)
    withheld: tuple[str, ...] = ()
    masking: MaskTable = ()
    conditions: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()  # sharing-method notations ("interface"); labels accepted on input
    basis: tuple[str, ...] = ()
    grants: tuple[Grant, ...] = ()

    def __post_init__(self) -> None:
        where = f"dataset {self.dataset_id!r}"
        try:
            object.__setattr__(self, "dataset_id", check_dataset_id(self.dataset_id))
            withheld = tuple(sorted({_item(i) for i in self.withheld}))
            declared = {_item(i) for i in self.items}
            methods = tuple(sorted({method_notation(m) for m in self.methods if m.strip()}))
        except ValueError as exc:
            raise _bad(where, exc) from exc
        kind = SharingType(self.sharing_type)
        masking = _mask_table(self.masking)
        basis = _texts(self.basis)
        grants = tuple(sorted(self.grants, key=lambda g: (g.consumer_code, g.grant_id)))
        if kind is not SharingType.UNCONDITIONAL and not basis:
            raise InputError(
                f"{where}: a {kind.label_en} ({kind.label_zh}) dataset must cite its basis (依据)"
            )
        if withheld and not basis:
            raise InputError(f"{where}: items withheld from everyone (不予共享) must cite their basis (依据)")
        if kind is not SharingType.CONDITIONAL and grants:
            raise InputError(
                f"{where}: only conditional (有条件共享) datasets carry grants; this one is {kind.label_en}"
            )
        if kind is SharingType.NOT_SHARED and (withheld or masking):
            raise InputError(
                f"{where}: a not-shared dataset shares nothing; it has no withheld items or masking"
            )
        if kind is SharingType.CONDITIONAL and masking:
            raise InputError(f"{where}: a conditional dataset masks per grant, not for everyone")
        for key, rule in masking:
            if key == "id":
                if rule.method is not MaskMethod.HASH:
                    raise InputError(f"{where}: the record id can only be masked with hash")
                continue
            try:
                _item(key)
            except ValueError as exc:
                raise _bad(where, exc) from exc
            if key in withheld:
                raise InputError(f"{where}: item {key!r} is withheld, so it cannot be masked")
        ids = [g.grant_id for g in grants]
        if len(set(ids)) != len(ids):
            raise InputError(f"{where}: two grants share one id")
        for g in grants:
            if g.dataset_id != self.dataset_id:
                raise InputError(f"{where}: grant {g.grant_id} belongs to dataset {g.dataset_id!r}")
            clash = set(g.items) & set(withheld)
            if clash:
                raise InputError(
                    f"{where}: grant to {g.consumer_code} covers withheld item(s) {', '.join(sorted(clash))}"
                )
            declared.update(g.items)
        declared.update(withheld)
        declared.update(k for k, _ in masking if k != "id")
        labels = tuple(sorted({(k, v.strip()) for k, v in self.item_labels if v and v.strip()}))
        if len({k for k, _ in labels}) != len(labels):
            raise InputError(f"{where}: an item has two different names: {labels}")
        object.__setattr__(self, "sharing_type", kind)
        object.__setattr__(self, "title", self.title.strip() if self.title and self.title.strip() else None)
        object.__setattr__(self, "items", tuple(sorted(declared)))
        object.__setattr__(self, "item_labels", labels)
        object.__setattr__(self, "withheld", withheld)
        object.__setattr__(self, "masking", masking)
        object.__setattr__(self, "conditions", _texts(self.conditions))
        object.__setattr__(self, "methods", methods)
        object.__setattr__(self, "basis", basis)
        object.__setattr__(self, "grants", grants)

    @property
    def basis_text(self) -> str | None:
        return "；".join(self.basis) or None

    @property
    def masking_map(self) -> dict[str, MaskRule]:
        return dict(self.masking)

    def label(self, key: str) -> str | None:
        """The item's name in this list, else its Chinese label in the standard."""
        return dict(self.item_labels).get(key) or item_label(key)

    def grants_for(self, consumer_code: str) -> tuple[Grant, ...]:
        return tuple(g for g in self.grants if g.consumer_code == consumer_code)


@dataclass(frozen=True, slots=True)
class ResponsibilityList:
    """共享责任清单: the sharing rules of one provider department, one entry per dataset."""

    datasets: tuple[DatasetPolicy, ...] = ()
    provider_code: str | None = None
    title: str | None = None
    _index: dict[str, DatasetPolicy] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        datasets = tuple(sorted(self.datasets, key=lambda d: d.dataset_id))
        index = {d.dataset_id: d for d in datasets}
        if len(index) != len(datasets):
            ids = [d.dataset_id for d in datasets]
            dup = next(i for i in ids if ids.count(i) > 1)
            raise InputError(f"dataset {dup!r} is listed twice")
        if self.provider_code:
            try:
                object.__setattr__(self, "provider_code", check_credit_code(self.provider_code, "provider"))
            except ValueError as exc:
                raise InputError(str(exc)) from exc
        object.__setattr__(self, "datasets", datasets)
        object.__setattr__(self, "_index", index)

    def get(self, dataset_id: str) -> DatasetPolicy | None:
        return self._index.get(dataset_id)

    def dataset(self, dataset_id: str) -> DatasetPolicy:
        found = self._index.get(dataset_id)
        if found is None:
            raise NotFound(f"dataset {dataset_id!r} is not in the responsibility list")
        return found

    @property
    def grants(self) -> tuple[Grant, ...]:
        return tuple(g for d in self.datasets for g in d.grants)

    def with_dataset(self, dataset: DatasetPolicy) -> ResponsibilityList:
        """Add the dataset, or replace the entry with the same id."""
        others = tuple(d for d in self.datasets if d.dataset_id != dataset.dataset_id)
        return replace(self, datasets=(*others, dataset))

    def with_grant(self, grant: Grant) -> ResponsibilityList:
        """Add a grant (replacing one with the same id). The dataset must be listed and conditional."""
        ds = self.dataset(grant.dataset_id)
        if ds.sharing_type is not SharingType.CONDITIONAL:
            raise InputError(
                f"dataset {ds.dataset_id!r} is {ds.sharing_type.label_en} ({ds.sharing_type.label_zh}); "
                "grants apply only to conditional (有条件共享) datasets"
            )
        grants = tuple(g for g in ds.grants if g.grant_id != grant.grant_id)
        log.info(
            "grant %s: %s -> %s items=%s", grant.grant_id, ds.dataset_id, grant.consumer_code, grant.items
        )
        return self.with_dataset(replace(ds, grants=(*grants, grant)))

    def revoke(self, dataset_id: str, consumer_code: str) -> tuple[ResponsibilityList, tuple[Grant, ...]]:
        """Remove every grant of ``consumer_code`` on ``dataset_id``; returns the new list and what was removed."""
        ds = self.dataset(dataset_id)
        code = consumer_code.strip().upper()
        removed = tuple(g for g in ds.grants if g.consumer_code == code)
        if not removed:
            raise NotFound(f"dataset {dataset_id!r} has no grant for consumer {consumer_code}")
        kept = tuple(g for g in ds.grants if g.consumer_code != code)
        log.info("revoked %d grant(s): %s -> %s", len(removed), dataset_id, code)
        return self.with_dataset(replace(ds, grants=kept)), removed
