"""Text patterns request shapes share."""

# Text the database can store: no NUL character (PostgreSQL refuses it in `text`).
NO_NUL = r"^[^\x00]*$"
# A team id: the slug of its name.
TEAM_ID = r"^[a-z0-9][a-z0-9-]*$"


def storable(text: str | None) -> str | None:
    """Text PostgreSQL can store in `text` and `jsonb`: each NUL becomes U+FFFD."""
    return None if text is None else text.replace("\x00", "\ufffd")
