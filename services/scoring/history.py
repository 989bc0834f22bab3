"""A labelled synthetic loan history from a documented latent default process (README, "Model").

Loans are drawn like the clean rows of `loan-engine tape generate` (so a generated tape does not
drift), a few fields are left missing, and each loan defaults with probability
sigmoid(z), where z is the latent risk below plus unobserved noise. Same seed, same history.
"""

from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

import numpy as np

from contracts.loans import LoanFields, LoanRecord
from contracts.scoring import ScoringFeatures
from services.scoring.domain import features_of

PROPERTY_TYPES = ("SFR", "Condo", "Townhouse", "PUD", "2-4 Unit")
OCCUPANCIES = ("Primary", "Second Home", "Investment")
PURPOSES = ("Purchase", "Rate_Term_Refinance", "Cash_Out_Refinance")
# Log-odds added by each category (the first of each list is the reference).
PROPERTY_RISK = (0.0, 0.20, 0.10, -0.05, 0.45)
OCCUPANCY_RISK = (0.0, 0.35, 0.70)
PURPOSE_RISK = (-0.10, 0.0, 0.45)
INTERCEPT = -3.6
NOISE_SD = 0.6
MISSING_SHARE = 0.02


@dataclass(frozen=True, slots=True)
class History:
    """Loans' model inputs and whether each defaulted."""

    features: tuple[ScoringFeatures, ...]
    defaulted: np.ndarray
    latent: np.ndarray


def latent_risk(
    credit_score: np.ndarray,
    ltv: np.ndarray,
    dti: np.ndarray,
    note_rate: np.ndarray,
    amount: np.ndarray,
    appraisal_gap: np.ndarray,
    property_index: np.ndarray,
    occupancy_index: np.ndarray,
    purpose_index: np.ndarray,
) -> np.ndarray:
    """The latent log-odds of default, before noise (see the README for the story behind it)."""
    return (
        INTERCEPT
        - 0.010 * (credit_score - 720)
        + 0.045 * np.maximum(0, 680 - credit_score)  # thin files default disproportionately
        + 0.025 * (ltv - 75)
        + 0.75 * (ltv > 90)  # little equity left after costs
        + 0.025 * (dti - 30)
        + 0.006 * np.maximum(0, ltv - 80) * np.maximum(0, dti - 36)  # layered risk
        + 0.20 * (note_rate - 7)
        + 0.15 * np.log(amount / 300_000)
        + 6.0 * appraisal_gap
        + np.take(PROPERTY_RISK, property_index)
        + np.take(OCCUPANCY_RISK, occupancy_index)
        + np.take(PURPOSE_RISK, purpose_index)
        + 0.6 * ((occupancy_index == 2) & (purpose_index == 2))  # investors taking cash out
    )


def synthetic_history(samples: int, seed: int) -> History:
    """`samples` labelled loans, deterministic per seed."""
    if samples < 10:
        raise ValueError("a history needs at least 10 loans")
    rng = np.random.default_rng(seed)
    ltv = rng.integers(4000, 9501, samples) / 100
    jumbo = rng.random(samples) >= 0.8
    amount = np.where(
        jumbo, rng.integers(60_000, 4_000_001, samples), rng.integers(60_000, 900_001, samples)
    ).astype(float)
    note_rate = rng.integers(2_500, 11_501, samples) / 1000
    dti = rng.integers(100, 491, samples) / 10
    credit_score = rng.integers(620, 821, samples).astype(float)
    property_index = rng.integers(0, len(PROPERTY_TYPES), samples)
    occupancy_index = rng.integers(0, len(OCCUPANCIES), samples)
    purpose_index = rng.integers(0, len(PURPOSES), samples)
    price = np.floor(amount * 100 / ltv)
    appraisal = np.floor(price * rng.integers(960, 1081, samples) / 1000)
    gap = np.maximum(0, (price - appraisal) / price)
    latent = latent_risk(
        credit_score,
        ltv,
        dti,
        note_rate,
        amount,
        gap,
        property_index,
        occupancy_index,
        purpose_index,
    ) + rng.normal(0, NOISE_SD, samples)
    defaulted = (rng.random(samples) < 1 / (1 + np.exp(-latent))).astype(np.int8)
    missing = rng.random((samples, 4)) < MISSING_SHARE
    features = tuple(
        features_of(
            LoanRecord(
                loan_id=UUID(int=index + 1),
                seq=index + 1,
                source_file="history.csv",
                row=index + 1,
                fields=LoanFields(
                    loan_amount=_text(amount[index]),
                    note_rate=_text(note_rate[index]),
                    ltv_ratio=_text(ltv[index]),
                    dti_ratio=None if missing[index, 0] else _text(dti[index]),
                    credit_score=_text(credit_score[index]),
                    property_type=PROPERTY_TYPES[property_index[index]],
                    occupancy_status=None
                    if missing[index, 1]
                    else OCCUPANCIES[occupancy_index[index]],
                    loan_purpose=PURPOSES[purpose_index[index]],
                    purchase_price=None if missing[index, 2] else _text(price[index]),
                    appraisal_value=None if missing[index, 3] else _text(appraisal[index]),
                ),
            )
        )
        for index in range(samples)
    )
    return History(features=features, defaulted=defaulted, latent=latent)


def _text(value: float) -> str:
    """A drawn number as a tape would carry it (shortest round-trip text, no trailing `.0`)."""
    number = Decimal(repr(float(value)))
    return str(number.to_integral_value()) if number == number.to_integral_value() else str(number)
