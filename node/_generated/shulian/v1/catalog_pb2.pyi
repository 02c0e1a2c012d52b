from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CatalogFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CATALOG_FORMAT_UNSPECIFIED: _ClassVar[CatalogFormat]
    TURTLE: _ClassVar[CatalogFormat]
    JSON_LD: _ClassVar[CatalogFormat]
CATALOG_FORMAT_UNSPECIFIED: CatalogFormat
TURTLE: CatalogFormat
JSON_LD: CatalogFormat

class GetCatalogRequest(_message.Message):
    __slots__ = ("format",)
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    format: CatalogFormat
    def __init__(self, format: _Optional[_Union[CatalogFormat, str]] = ...) -> None: ...

class GetCatalogResponse(_message.Message):
    __slots__ = ("content_type", "content")
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    content_type: str
    content: bytes
    def __init__(self, content_type: _Optional[str] = ..., content: _Optional[bytes] = ...) -> None: ...

class DescribeDatasetRequest(_message.Message):
    __slots__ = ("dataset",)
    DATASET_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    def __init__(self, dataset: _Optional[str] = ...) -> None: ...

class DescribeDatasetResponse(_message.Message):
    __slots__ = ("dataset", "record_type", "metadata_json", "json_schema", "shapes_turtle")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    RECORD_TYPE_FIELD_NUMBER: _ClassVar[int]
    METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
    JSON_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    SHAPES_TURTLE_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    record_type: str
    metadata_json: bytes
    json_schema: bytes
    shapes_turtle: str
    def __init__(self, dataset: _Optional[str] = ..., record_type: _Optional[str] = ..., metadata_json: _Optional[bytes] = ..., json_schema: _Optional[bytes] = ..., shapes_turtle: _Optional[str] = ...) -> None: ...
