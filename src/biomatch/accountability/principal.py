"""The authenticated operator on whose behalf the core acts."""

from __future__ import annotations

from dataclasses import dataclass

from biomatch.accountability.roles import Action, Role, require


@dataclass(frozen=True)
class Principal:
    operator_id: int | None  # None for the local system (retention job, installer)
    name: str
    role: Role

    def require(self, action: Action) -> None:
        require(self.role, action, self.name)


SYSTEM = Principal(None, "system", Role.ADMIN)
