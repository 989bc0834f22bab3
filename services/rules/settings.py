"""Settings of the rules service (env prefix `RULES_`; shared infrastructure unprefixed)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings


class RulesSettings(ServiceSettings):
    """What rules needs beyond the shared settings: its consumer group and rule-set version."""

    model_config = SettingsConfigDict(
        env_prefix="RULES_", env_file=".env", extra="ignore", populate_by_name=True
    )

    service_name: str = "rules"
    http_port: int = 8102
    consumer_group: str = Field("rules", description="Consumer group on loans.ingested.v1.")
    rule_set_version: str | None = Field(
        None, description="Rule-set version to evaluate with (default: the current one)."
    )
