from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class RequestAccessRequest(_message.Message):
    __slots__ = ("dataset", "purpose", "scenario", "items", "until")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    purpose: str
    scenario: str
    items: _containers.RepeatedScalarFieldContainer[str]
    until: str
    def __init__(self, dataset: _Optional[str] = ..., purpose: _Optional[str] = ..., scenario: _Optional[str] = ..., items: _Optional[_Iterable[str]] = ..., until: _Optional[str] = ...) -> None: ...

class GetAccessRequestRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class AccessRequestInfo(_message.Message):
    __slots__ = ("id", "dataset", "consumer", "purpose", "scenario", "items", "until", "status", "reason", "filed_at", "deadline", "decided_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    FILED_AT_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    dataset: str
    consumer: str
    purpose: str
    scenario: str
    items: _containers.RepeatedScalarFieldContainer[str]
    until: str
    status: str
    reason: str
    filed_at: str
    deadline: str
    decided_at: str
    def __init__(self, id: _Optional[str] = ..., dataset: _Optional[str] = ..., consumer: _Optional[str] = ..., purpose: _Optional[str] = ..., scenario: _Optional[str] = ..., items: _Optional[_Iterable[str]] = ..., until: _Optional[str] = ..., status: _Optional[str] = ..., reason: _Optional[str] = ..., filed_at: _Optional[str] = ..., deadline: _Optional[str] = ..., decided_at: _Optional[str] = ...) -> None: ...
