from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DatasetStatus(_message.Message):
    __slots__ = ("id", "record_type", "records")
    ID_FIELD_NUMBER: _ClassVar[int]
    RECORD_TYPE_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    id: str
    record_type: str
    records: int
    def __init__(self, id: _Optional[str] = ..., record_type: _Optional[str] = ..., records: _Optional[int] = ...) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ("department", "name", "version", "state", "components", "caller", "datasets", "latest_seq")
    class ComponentsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DEPARTMENT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    LATEST_SEQ_FIELD_NUMBER: _ClassVar[int]
    department: str
    name: str
    version: str
    state: str
    components: _containers.ScalarMap[str, str]
    caller: str
    datasets: _containers.RepeatedCompositeFieldContainer[DatasetStatus]
    latest_seq: int
    def __init__(self, department: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[str] = ..., state: _Optional[str] = ..., components: _Optional[_Mapping[str, str]] = ..., caller: _Optional[str] = ..., datasets: _Optional[_Iterable[_Union[DatasetStatus, _Mapping]]] = ..., latest_seq: _Optional[int] = ...) -> None: ...
