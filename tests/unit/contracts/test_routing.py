"""The routing band the gateway reads is the one scoring routes by, version for version."""

from contracts.routing import POLICIES_DIR, Thresholds, thresholds
from services.gateway.review.service import policy_for
from services.gateway.settings import GatewaySettings
from services.scoring.domain import CURRENT_POLICY, load_policy


def test_every_shipped_policy_gives_the_gateway_the_band_scoring_routes_by() -> None:
    versions = [path.stem for path in POLICIES_DIR.glob("*.json")]
    assert CURRENT_POLICY in versions
    for version in versions:
        policy = load_policy(version)
        assert thresholds(version) == Thresholds(policy.auto_approve_min, policy.auto_decline_max)


def test_an_unknown_or_malformed_version_has_no_band() -> None:
    assert thresholds("1999.1.1") is None
    assert thresholds("../policies/2026.12.1") is None


def test_a_decision_is_weighed_against_the_band_of_the_policy_that_routed_the_loan() -> None:
    settings = GatewaySettings(review_auto_approve_min=900, review_auto_decline_max=700)
    routed = policy_for(settings, CURRENT_POLICY)
    current = load_policy(CURRENT_POLICY)
    assert (routed.auto_approve_min, routed.auto_decline_max) == (
        current.auto_approve_min,
        current.auto_decline_max,
    )
    assert (
        policy_for(settings, None).auto_approve_min,
        policy_for(settings, "9.9").auto_decline_max,
    ) == (900, 700)


def test_the_gateway_s_default_band_is_the_current_policy_s() -> None:
    current = load_policy(CURRENT_POLICY)
    defaults = GatewaySettings()
    assert (defaults.review_auto_approve_min, defaults.review_auto_decline_max) == (
        current.auto_approve_min,
        current.auto_decline_max,
    )
