"""Text patterns request shapes share."""

# Text the database can store: no NUL character (PostgreSQL refuses it in `text`).
NO_NUL = r"^[^\x00]*$"
# A team id: the slug of its name.
TEAM_ID = r"^[a-z0-9][a-z0-9-]*$"
