from node._generated.shulian.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class QueryRequest(_message.Message):
    __slots__ = ("dataset", "ids", "modified_since_us", "limit", "purpose", "items", "batch_size")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    MODIFIED_SINCE_US_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    ids: _containers.RepeatedScalarFieldContainer[str]
    modified_since_us: int
    limit: int
    purpose: str
    items: _containers.RepeatedScalarFieldContainer[str]
    batch_size: int
    def __init__(self, dataset: _Optional[str] = ..., ids: _Optional[_Iterable[str]] = ..., modified_since_us: _Optional[int] = ..., limit: _Optional[int] = ..., purpose: _Optional[str] = ..., items: _Optional[_Iterable[str]] = ..., batch_size: _Optional[int] = ...) -> None: ...

class QueryResponse(_message.Message):
    __slots__ = ("batch", "delivery")
    BATCH_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    batch: _common_pb2.RecordBatch
    delivery: _common_pb2.Delivery
    def __init__(self, batch: _Optional[_Union[_common_pb2.RecordBatch, _Mapping]] = ..., delivery: _Optional[_Union[_common_pb2.Delivery, _Mapping]] = ...) -> None: ...

class PushRequest(_message.Message):
    __slots__ = ("dataset", "records")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    records: _containers.RepeatedCompositeFieldContainer[_common_pb2.Record]
    def __init__(self, dataset: _Optional[str] = ..., records: _Optional[_Iterable[_Union[_common_pb2.Record, _Mapping]]] = ...) -> None: ...

class RecordResult(_message.Message):
    __slots__ = ("id", "status", "version", "violations", "error")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATUS_UNSPECIFIED: _ClassVar[RecordResult.Status]
        STORED: _ClassVar[RecordResult.Status]
        UNCHANGED: _ClassVar[RecordResult.Status]
        REJECTED: _ClassVar[RecordResult.Status]
    STATUS_UNSPECIFIED: RecordResult.Status
    STORED: RecordResult.Status
    UNCHANGED: RecordResult.Status
    REJECTED: RecordResult.Status
    ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    id: str
    status: RecordResult.Status
    version: int
    violations: _containers.RepeatedCompositeFieldContainer[_common_pb2.Violation]
    error: str
    def __init__(self, id: _Optional[str] = ..., status: _Optional[_Union[RecordResult.Status, str]] = ..., version: _Optional[int] = ..., violations: _Optional[_Iterable[_Union[_common_pb2.Violation, _Mapping]]] = ..., error: _Optional[str] = ...) -> None: ...

class PushResponse(_message.Message):
    __slots__ = ("batch", "results", "accepted", "rejected")
    BATCH_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    batch: int
    results: _containers.RepeatedCompositeFieldContainer[RecordResult]
    accepted: int
    rejected: int
    def __init__(self, batch: _Optional[int] = ..., results: _Optional[_Iterable[_Union[RecordResult, _Mapping]]] = ..., accepted: _Optional[int] = ..., rejected: _Optional[int] = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ("dataset", "purpose", "after", "items", "batch_size", "follow")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    purpose: str
    after: int
    items: _containers.RepeatedScalarFieldContainer[str]
    batch_size: int
    follow: bool
    def __init__(self, dataset: _Optional[str] = ..., purpose: _Optional[str] = ..., after: _Optional[int] = ..., items: _Optional[_Iterable[str]] = ..., batch_size: _Optional[int] = ..., follow: _Optional[bool] = ...) -> None: ...

class SubscribeResponse(_message.Message):
    __slots__ = ("batch", "cursor", "delivery", "caught_up")
    BATCH_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    CAUGHT_UP_FIELD_NUMBER: _ClassVar[int]
    batch: _common_pb2.RecordBatch
    cursor: int
    delivery: _common_pb2.Delivery
    caught_up: bool
    def __init__(self, batch: _Optional[_Union[_common_pb2.RecordBatch, _Mapping]] = ..., cursor: _Optional[int] = ..., delivery: _Optional[_Union[_common_pb2.Delivery, _Mapping]] = ..., caught_up: _Optional[bool] = ...) -> None: ...
