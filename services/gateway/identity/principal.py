"""Who is asking: a user's id, role and team, and what that lets them see (SPEC §4 roles)."""

from dataclasses import dataclass
from typing import Literal
from uuid import UUID

Role = Literal["admin", "analyst", "senior_analyst", "sales_team"]
ROLES: tuple[Role, ...] = ("admin", "analyst", "senior_analyst", "sales_team")


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated user."""

    user_id: UUID
    username: str
    role: Role
    team_id: str | None

    @property
    def team_scope(self) -> str | None:
        """The one team whose data this user may see, or None for every team."""
        return self.team_id if self.role == "sales_team" else None

    @property
    def is_admin(self) -> bool:
        """Whether the user administers users, teams and projections."""
        return self.role == "admin"
