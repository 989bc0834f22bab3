"""Alembic environment of reporting: schema `reporting`, its version table there too."""

from services.common.migrations import run_environment
from services.reporting.repository import SCHEMA, metadata
from services.reporting.settings import ReportingSettings

run_environment(SCHEMA, metadata, lambda: ReportingSettings().database_dsn)
