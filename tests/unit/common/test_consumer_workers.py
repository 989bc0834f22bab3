"""Every loan-batch subscriber runs CONSUMER_WORKERS consumers, each on its own partitions."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from faststream.kafka import KafkaBroker

from services.common.runtime import make_broker
from services.common.settings import ServiceSettings
from services.pricing.handlers import subscribe as subscribe_pricing
from services.pricing.settings import PricingSettings
from services.reporting.handlers import subscribe as subscribe_reporting
from services.reporting.settings import ReportingSettings
from services.rules.domain import load_rule_set
from services.rules.handlers import subscribe as subscribe_rules
from services.rules.settings import RulesSettings

UNIT = {"topic_prefix": "unit.", "kafka_bootstrap_servers": "127.0.0.1:1"}


class NoUseCases:
    """Reporting's use cases are not called: only the subscription is looked at."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"{name} was called")


def rules(broker: KafkaBroker, settings: Any) -> None:
    subscribe_rules(broker, settings, load_rule_set())


def pricing(broker: KafkaBroker, settings: Any) -> None:
    subscribe_pricing(broker, settings)


def reporting(broker: KafkaBroker, settings: Any) -> None:
    subscribe_reporting(broker, settings, NoUseCases(), NoUseCases())


CASES: dict[str, tuple[type[ServiceSettings], Callable[[KafkaBroker, Any], None], str]] = {
    "rules": (RulesSettings, rules, "loans.ingested.v1"),
    "pricing": (PricingSettings, pricing, "loans.evaluated.v1"),
    "reporting": (ReportingSettings, reporting, "loans.priced.v1"),
}


def test_consumer_workers_default_to_three() -> None:
    assert ServiceSettings(**UNIT).consumer_workers == 3


@pytest.mark.parametrize("service", sorted(CASES))
def test_the_loan_batch_subscriber_runs_the_configured_number_of_consumers(
    service: str, tmp_path: Path
) -> None:
    settings_type, subscribe, topic = CASES[service]
    settings = settings_type(**UNIT, consumer_workers=2, storage_root=tmp_path)
    broker = make_broker(settings)
    subscribe(broker, settings)

    [loans] = [sub for sub in broker.subscribers if f"unit.{topic}" in sub.topic_names]
    assert loans.max_workers == 2
