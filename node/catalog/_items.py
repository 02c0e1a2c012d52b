"""Information items (信息项) of a record type, read from the standard.

An item is one property of the record type's shape (``sl:identityNumber`` ...), named
with the vocabulary's labels, typed with the property's ``rdfs:range`` and, where the
data-element format (GB/T 19488, ``sl:dataFormat``) fixes it, its length: ``an18`` -> 18,
``an..200`` -> 200, ``n..12,2`` -> 12.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from node.errors import StandardError

__all__ = ["InformationItem", "information_items"]

_FORMAT_LENGTH = re.compile(r"^(?:a|n|an)(?:\.\.)?([1-9][0-9]*)(?:,[0-9]+)?\Z")
_XSD = "http://www.w3.org/2001/XMLSchema#"


@dataclass(frozen=True, slots=True)
class InformationItem:
    key: str  # the record JSON key, e.g. "identityNumber"
    property_iri: str  # https://w3id.org/shulian/ns#identityNumber
    title_zh: str
    title_en: str
    datatype: str  # an XSD datatype IRI
    length: int | None  # maximum length in characters (digits for numbers), when the format fixes one
    data_format: str | None  # the GB/T 19488 format, e.g. "an18"
    code_list: str | None  # the code list of coded values, e.g. "sex"
    required: bool

    def to_dict(self) -> dict[str, object]:
        return {
            "key": self.key,
            "property": self.property_iri,
            "title": {"zh": self.title_zh, "en": self.title_en},
            "datatype": "xsd:" + self.datatype[len(_XSD):] if self.datatype.startswith(_XSD) else self.datatype,
            "length": self.length,
            "format": self.data_format,
            "code_list": self.code_list,
            "required": self.required,
        }


def _length(data_format: str | None) -> int | None:
    if not data_format:
        return None
    m = _FORMAT_LENGTH.match(data_format)
    return int(m.group(1)) if m else None


def information_items(record_type: str, standard_dir: str | Path | None = None
                      ) -> tuple[InformationItem, ...]:
    """The items of ``record_type`` in key order. Raises :class:`StandardError` for an unknown type
    or a property the vocabulary does not describe."""
    from node.standard.codelists import load_vocabulary
    from node.standard.model import load_standard

    rt = load_standard(standard_dir).record_type(record_type)
    vocabulary = load_vocabulary(standard_dir)
    out: list[InformationItem] = []
    for key, iri in rt.keys.items():
        term = vocabulary.get(key)
        if term is None or term.iri != iri:
            raise StandardError(f"record type {record_type}: property {iri} is not described in vocab/core.ttl")
        out.append(InformationItem(
            key=key,
            property_iri=iri,
            title_zh=term.label_zh or key,
            title_en=term.label_en or key,
            datatype=term.range or _XSD + "string",
            length=_length(term.data_format),
            data_format=term.data_format,
            code_list=term.code_list,
            required=key in rt.required,
        ))
    return tuple(out)
