"""schemathesis hooks of the fuzz run (`SCHEMATHESIS_HOOKS=tests.fuzz.hooks`).

The fuzzer acts as one admin with one token. It may learn that admin's id from a response and
PATCH it with a new password, which rightly revokes every token of the admin issued before, the
fuzzer's own included: everything after would be a 401. Those cases are left out; changing one's
own password is covered by tests/integration/gateway/test_account_controls.py.
"""

from __future__ import annotations

import os

import schemathesis
from schemathesis import Case
from schemathesis.hooks import HookContext

ADMIN_ID = os.environ.get("FUZZ_ADMIN_ID", "")


@schemathesis.hook
def filter_case(context: HookContext, case: Case) -> bool:  # noqa: ARG001
    """Every case but one that changes the fuzzer's own account."""
    targets_self = str((case.path_parameters or {}).get("user_id", "")) == ADMIN_ID
    return not (targets_self and case.method.upper() == "PATCH")
