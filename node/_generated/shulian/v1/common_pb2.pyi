from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Record(_message.Message):
    __slots__ = ("id", "payload", "version", "deleted", "modified_us")
    ID_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    MODIFIED_US_FIELD_NUMBER: _ClassVar[int]
    id: str
    payload: bytes
    version: int
    deleted: bool
    modified_us: int
    def __init__(self, id: _Optional[str] = ..., payload: _Optional[bytes] = ..., version: _Optional[int] = ..., deleted: _Optional[bool] = ..., modified_us: _Optional[int] = ...) -> None: ...

class RecordBatch(_message.Message):
    __slots__ = ("dataset", "records", "provider", "key_id", "signature")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    records: _containers.RepeatedCompositeFieldContainer[Record]
    provider: str
    key_id: str
    signature: bytes
    def __init__(self, dataset: _Optional[str] = ..., records: _Optional[_Iterable[_Union[Record, _Mapping]]] = ..., provider: _Optional[str] = ..., key_id: _Optional[str] = ..., signature: _Optional[bytes] = ...) -> None: ...

class Violation(_message.Message):
    __slots__ = ("path", "constraint", "severity", "message_zh", "message_en")
    PATH_FIELD_NUMBER: _ClassVar[int]
    CONSTRAINT_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ZH_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_EN_FIELD_NUMBER: _ClassVar[int]
    path: str
    constraint: str
    severity: str
    message_zh: str
    message_en: str
    def __init__(self, path: _Optional[str] = ..., constraint: _Optional[str] = ..., severity: _Optional[str] = ..., message_zh: _Optional[str] = ..., message_en: _Optional[str] = ...) -> None: ...

class Delivery(_message.Message):
    __slots__ = ("reason", "dataset", "provider", "consumer", "purpose", "items", "withheld", "masking", "grants", "basis", "request_id")
    class MaskingEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    REASON_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    WITHHELD_FIELD_NUMBER: _ClassVar[int]
    MASKING_FIELD_NUMBER: _ClassVar[int]
    GRANTS_FIELD_NUMBER: _ClassVar[int]
    BASIS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    reason: str
    dataset: str
    provider: str
    consumer: str
    purpose: str
    items: _containers.RepeatedScalarFieldContainer[str]
    withheld: _containers.RepeatedScalarFieldContainer[str]
    masking: _containers.ScalarMap[str, str]
    grants: _containers.RepeatedScalarFieldContainer[str]
    basis: str
    request_id: str
    def __init__(self, reason: _Optional[str] = ..., dataset: _Optional[str] = ..., provider: _Optional[str] = ..., consumer: _Optional[str] = ..., purpose: _Optional[str] = ..., items: _Optional[_Iterable[str]] = ..., withheld: _Optional[_Iterable[str]] = ..., masking: _Optional[_Mapping[str, str]] = ..., grants: _Optional[_Iterable[str]] = ..., basis: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class ErrorDetail(_message.Message):
    __slots__ = ("reason", "domain", "message", "message_zh", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    REASON_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ZH_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    reason: str
    domain: str
    message: str
    message_zh: str
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, reason: _Optional[str] = ..., domain: _Optional[str] = ..., message: _Optional[str] = ..., message_zh: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...
