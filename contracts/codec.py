"""Wire format: UTF-8 JSON, Decimal as its exact string.

Loan batches (`contracts.wire` Structs) go through msgspec; every other contract through
pydantic-core's Rust codec. Both write the same bytes for the same facts (a test holds them
together). Measured on a 500-loan priced batch (benchmarks/codec.py, CPU time, shared 2-core
machine): msgspec encodes in 0.8 us/loan and decodes with validation in 2.6 us/loan; pydantic
takes 5.2 and 16.6 us/loan. orjson serves the untyped paths (dead-letter payloads, producer rows,
ad-hoc dicts).
"""

from functools import cache
from typing import Any, TypeVar, overload

import msgspec
import orjson
from pydantic import BaseModel, TypeAdapter

M = TypeVar("M", bound=BaseModel)
S = TypeVar("S", bound=msgspec.Struct)

# Decimal as its exact text, as pydantic writes it.
_ENCODER = msgspec.json.Encoder(decimal_format="string")
DecodeError = msgspec.DecodeError
"""What decoding a wire Struct raises on bad input (ValidationError is a subclass)."""


def encode(event: BaseModel | msgspec.Struct) -> bytes:
    """Serialise a contract or wire Struct to JSON bytes; Decimals become exact strings."""
    if isinstance(event, msgspec.Struct):
        return _ENCODER.encode(event)
    return event.model_dump_json().encode()


@cache
def _decoder(model: type[msgspec.Struct]) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(model)


@overload
def decode(data: bytes | str, model: type[M]) -> M: ...
@overload
def decode(data: bytes | str, model: type[S]) -> S: ...
def decode(data: bytes | str, model: type[Any]) -> Any:
    """Parse and validate JSON into a contract (pydantic.ValidationError on bad input) or a wire
    Struct (`DecodeError` on bad input)."""
    if issubclass(model, msgspec.Struct):
        return _decoder(model).decode(data)
    return model.model_validate_json(data)


def decode_union(data: bytes | str, adapter: TypeAdapter[Any]) -> Any:
    """Parse a discriminated union (run events, tape messages) in one pass."""
    return adapter.validate_json(data)


def dumps(value: Any) -> bytes:
    """Fast JSON for plain data; Decimal and other non-native values go as their string."""
    return orjson.dumps(value, default=str)


def loads(data: bytes | str) -> Any:
    """Fast JSON parse of plain data."""
    return orjson.loads(data)
