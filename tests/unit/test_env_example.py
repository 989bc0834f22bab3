"""Every tunable of every process is documented in `.env.example` (SPEC §5)."""

import re
from pathlib import Path

import pytest
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from services.cli.client import CliSettings
from services.cli.stack.settings import StackSettings
from services.gateway.settings import GatewaySettings
from services.ingest.settings import IngestSettings
from services.pricing.settings import PricingSettings
from services.reporting.settings import ReportingSettings
from services.rules.settings import RulesSettings
from services.scoring.settings import ScoringSettings

ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"
SETTINGS: tuple[type[BaseSettings], ...] = (
    IngestSettings,
    RulesSettings,
    PricingSettings,
    ReportingSettings,
    ScoringSettings,
    GatewaySettings,
    StackSettings,
    CliSettings,
)
UNDOCUMENTED = {"SERVICE_NAME", "HTTP_HOST", "CLI_HTTP_PORT"}


def variables(settings: type[BaseSettings]) -> set[str]:
    """The environment variable names a settings class reads."""
    prefix = settings.model_config.get("env_prefix", "")
    names = set()
    for name, field in settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.add(str(alias.choices[0]).upper())
        elif name.upper() not in UNDOCUMENTED:
            names.add(f"{prefix}{name}".upper())
    return names - UNDOCUMENTED


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda cls: cls.__name__)
def test_every_setting_is_documented_in_the_env_example(settings: type[BaseSettings]) -> None:
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.M))
    assert variables(settings) - documented == set()
