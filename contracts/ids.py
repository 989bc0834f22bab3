"""Deterministic identifiers (SPEC §2): one UUIDv5 namespace for loans, tape runs and events."""

from uuid import NAMESPACE_DNS, UUID, uuid5

NS = uuid5(NAMESPACE_DNS, "loan-engine")


def loan_id(run_id: UUID, source_file: str, row: int) -> UUID:
    """A loan's id: stable for its run, file and row number."""
    return uuid5(NS, f"{run_id}/{source_file}/{row}")


def tape_run_id(tape_id: str) -> UUID:
    """The run id of a producer's tape: known before the push, one run per tape."""
    return uuid5(NS, f"tape:{tape_id}")


def event_id(event_type: str, run_id: UUID, *parts: object) -> UUID:
    """An event's id: the same on every re-delivery or replay of the same fact."""
    suffix = "/".join(str(part) for part in parts)
    return uuid5(NS, f"{event_type}/{run_id}/{suffix}")


def batch_key(run_id: UUID, batch_seq: int) -> str:
    """The Kafka key of a loan batch, so one run spreads over the partitions."""
    return f"{run_id}:{batch_seq}"
