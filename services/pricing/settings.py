"""Settings of the pricing service (env prefix `PRICING_`; shared infrastructure unprefixed)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings


class PricingSettings(ServiceSettings):
    """What pricing needs beyond the shared settings: its consumer group."""

    model_config = SettingsConfigDict(
        env_prefix="PRICING_", env_file=".env", extra="ignore", populate_by_name=True
    )

    service_name: str = "pricing"
    http_port: int = 8103
    consumer_group: str = Field("pricing", description="Consumer group on loans.evaluated.v1.")
