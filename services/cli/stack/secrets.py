"""The local stack's own secrets: made once per state folder, kept readable by its owner only."""

import secrets
from pathlib import Path

from services.cli.stack import envfile

ADMIN_USERNAME = "admin"


def local_secrets(state_dir: Path) -> dict[str, str]:
    """The gateway's JWT key and first admin of this stack, created on first use and then reused.

    A stable key keeps tokens valid across `stack down`/`up`; the admin password is random so no
    two machines share one. Both live in `.stack/secrets.env` (mode 0600), never in the repo.
    """
    path = state_dir / "secrets.env"
    values = envfile.read(path)
    if not {"GATEWAY_JWT_SECRET", "GATEWAY_ADMIN_PASSWORD"} <= values.keys():
        values = {
            "GATEWAY_JWT_SECRET": secrets.token_urlsafe(48),
            "GATEWAY_ADMIN_USERNAME": ADMIN_USERNAME,
            "GATEWAY_ADMIN_PASSWORD": secrets.token_urlsafe(18),
            "GATEWAY_ADMIN_EMAIL": "admin@localhost",
        }
        envfile.write(path, values)
    return values
