"""Alembic environment of the gateway: schema `gateway`, its version table there too."""

from services.common.migrations import run_environment
from services.gateway.settings import GatewaySettings
from services.gateway.tables import SCHEMA, metadata

run_environment(SCHEMA, metadata, lambda: GatewaySettings().database_dsn)
