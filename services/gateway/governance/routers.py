"""The governance packages' routers, mounted under `/api` beside the original resources."""

from fastapi import APIRouter

from services.gateway.corrections.routes import router as corrections
from services.gateway.dq.routes import router as dq
from services.gateway.lineage.routes import router as lineage
from services.gateway.reconciliation.routes import router as reconciliation
from services.gateway.reprocess.routes import router as reprocess
from services.gateway.rulesets.routes import router as rulesets

GOVERNANCE_ROUTERS: tuple[APIRouter, ...] = (
    corrections,
    dq,
    lineage,
    reconciliation,
    reprocess,
    rulesets,
)
