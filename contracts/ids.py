"""Deterministic identifiers (SPEC §2): one UUIDv5 namespace for loans, tape runs and events."""

import hashlib
from collections.abc import Sequence
from functools import lru_cache
from uuid import NAMESPACE_DNS, UUID, SafeUUID, uuid5

import msgspec

NS = uuid5(NAMESPACE_DNS, "loan-engine")
# Every id hashes the namespace bytes first: hash them once and copy the state per id.
_NS_SHA1 = hashlib.sha1(NS.bytes, usedforsecurity=False)
# RFC 4122 version 5 and variant bits, as `uuid.UUID(bytes=..., version=5)` sets them.
_CLEAR_BITS = ~((0xF000 << 64) | (0xC000 << 48))
_SET_BITS = (5 << 76) | (0x8000 << 48)
# Looked up once: an enum member's attribute access costs more than the rest of building an id.
_UNKNOWN_SAFETY = SafeUUID.unknown
_new = object.__new__
# A list of UUIDs as JSON: `["<36 characters>","<36 characters>",...]`, each as str(UUID) writes it.
_UUID_TEXTS = msgspec.json.Encoder()
_UUID_STRIDE = 39  # 36 characters, two quotes and a comma
_set = object.__setattr__


def _uuid5(name: str) -> UUID:
    """`uuid5(NS, name)` without re-hashing the namespace (same result, about twice as fast)."""
    digest = _NS_SHA1.copy()
    digest.update(name.encode())
    return _from_digest(digest)


def _from_digest(digest: "hashlib._Hash") -> UUID:
    """The version-5 UUID of a SHA-1 that has absorbed the namespace and the whole name."""
    value = int.from_bytes(digest.digest()[:16], "big")
    # UUID(int=...) re-checks its arguments; the value is in range by construction.
    uuid = _new(UUID)
    _set(uuid, "int", (value & _CLEAR_BITS) | _SET_BITS)
    _set(uuid, "is_safe", _UNKNOWN_SAFETY)
    return uuid


@lru_cache(maxsize=256)
def _prefix(event_type: str, run_id: UUID) -> "hashlib._Hash":
    """SHA-1 state after the namespace and `{event_type}/{run_id}/`: every event of a batch
    shares that prefix, so each id hashes only its own suffix (SHA-1 is a stream: same digest)."""
    digest = _NS_SHA1.copy()
    digest.update(f"{event_type}/{run_id}/".encode())
    return digest


@lru_cache(maxsize=64)
def _loan_prefix(run_id: UUID, source_file: str) -> "hashlib._Hash":
    """SHA-1 state after the namespace and `{run_id}/{source_file}/`: every loan of a file shares
    it, so each loan id hashes only its row number (and `run_id` is not written out per loan)."""
    digest = _NS_SHA1.copy()
    digest.update(f"{run_id}/{source_file}/".encode())
    return digest


def loan_id(run_id: UUID, source_file: str, row: int) -> UUID:
    """A loan's id, stable for its run, file and row: `uuid5(NS, f"{run_id}/{file}/{row}")`."""
    digest = _loan_prefix(run_id, source_file).copy()
    digest.update(str(row).encode())
    return _from_digest(digest)


def tape_run_id(tape_id: str) -> UUID:
    """The run id of a producer's tape: known before the push, one run per tape."""
    return _uuid5(f"tape:{tape_id}")


def event_id(event_type: str, run_id: UUID, *parts: object) -> UUID:
    """An event's id: the same on every re-delivery or replay of the same fact."""
    suffix = str(parts[0]) if len(parts) == 1 else "/".join(str(part) for part in parts)
    digest = _prefix(event_type, run_id).copy()
    digest.update(suffix.encode())
    return _from_digest(digest)


def event_ids(event_type: str, run_ids: Sequence[UUID], keys: Sequence[UUID]) -> list[UUID]:
    """`event_id(event_type, run_id, key)` of each (run id, key) pair, in order: the same ids, with
    every UUID's text written by one msgspec call per batch instead of one str() per id."""
    if len(run_ids) != len(keys):
        raise ValueError("event_ids needs one run id per key")
    runs, texts = _UUID_TEXTS.encode(run_ids), _UUID_TEXTS.encode(keys)
    ids: list[UUID] = []
    run = b""
    prefix = _NS_SHA1
    for start in range(2, len(texts), _UUID_STRIDE):
        if runs[start : start + 36] != run:
            run = runs[start : start + 36]
            prefix = _prefix(event_type, UUID(run.decode()))
        digest = prefix.copy()
        digest.update(texts[start : start + 36])
        ids.append(_from_digest(digest))
    return ids


def batch_key(run_id: UUID, batch_seq: int) -> str:
    """The Kafka key of a loan batch, so one run spreads over the partitions."""
    return f"{run_id}:{batch_seq}"


def exception_id(loan_id: UUID, exception_type: str) -> UUID:
    """An exception's id (SPEC §7): the same loan and type name the same exception."""
    return _uuid5(f"{loan_id}/{exception_type}")


def review_case_id(loan_id: UUID) -> UUID:
    """A review case's id (SPEC §8): one case per loan routed to a person."""
    return _uuid5(f"review-case/{loan_id}")
