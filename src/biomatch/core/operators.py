"""Operators: issuing, listing and revoking API tokens, and authenticating them."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from biomatch.accountability import tokens
from biomatch.accountability.principal import SYSTEM, Principal
from biomatch.accountability.roles import Action, Role
from biomatch.core.state import (
    CoreState,
    check_name,
)
from biomatch.errors import (
    OperatorExists,
    OperatorNotFound,
    RevocationRefused,
    Unauthenticated,
)
from biomatch.results import (
    IssuedOperator,
    OperatorOut,
)
from biomatch.store.models import Operator


class OperatorsAPI(CoreState):
    def create_operator(self, actor: Principal, name: str, role: Role) -> IssuedOperator:
        actor.require(Action.OPERATOR_MANAGE)
        name = check_name("operator name", name)
        issued = tokens.issue()
        try:
            with self._write_lock, self.db.write_transaction() as session:
                operator = Operator(
                    name=name,
                    role=role.value,
                    token_id=issued.token_id,
                    token_salt=issued.salt,
                    token_hash=issued.secret_hash,
                )
                session.add(operator)
                session.flush()
                self.audit.append(
                    session,
                    actor,
                    "operator.create",
                    details={"operator": name, "role": role.value},
                )
                return IssuedOperator(**_operator_out(operator).model_dump(), token=issued.token)
        except IntegrityError:
            raise OperatorExists(f"An operator named {name!r} exists.", operator=name) from None

    def list_operators(self, actor: Principal) -> list[OperatorOut]:
        actor.require(Action.OPERATOR_MANAGE)
        with self.db.transaction() as session:
            return [
                _operator_out(o) for o in session.scalars(select(Operator).order_by(Operator.name))
            ]

    def revoke_operator(self, actor: Principal, name: str) -> OperatorOut:
        actor.require(Action.OPERATOR_MANAGE)
        with self._write_lock, self.db.write_transaction() as session:
            operator = session.scalars(select(Operator).where(Operator.name == name)).first()
            if operator is None:
                raise OperatorNotFound(f"There is no operator {name!r}.", operator=name)
            _check_revocable(session, actor, operator)
            operator.active = False
            self.audit.append(session, actor, "operator.revoke", details={"operator": name})
            return _operator_out(operator)

    def authenticate(self, token: str | None, client: str | None = None) -> Principal:
        """The operator the token belongs to. Failed attempts are counted per client address
        and per token id (and audited); past the limit they are refused before any check."""
        if not token:
            raise Unauthenticated("A bearer token of the form bm_<id>_<secret> is required.")
        parsed = tokens.parse(token)
        keys = [f"address:{client}"] if client else []
        if parsed is not None:
            keys.append(f"token:{parsed[0]}")
        self._login_throttle.admit(keys)
        principal = self._principal_for(parsed)
        if principal is not None:
            self._login_throttle.succeeded(keys)
        else:
            self._record_failed_login(keys, client, parsed[0] if parsed else None)
            if parsed is None:
                raise Unauthenticated("A bearer token of the form bm_<id>_<secret> is required.")
            raise Unauthenticated("The token is unknown, revoked or wrong.")
        self._request_limit.take(principal.name)
        return principal

    def _principal_for(self, parsed: tuple[str, str] | None) -> Principal | None:
        if parsed is None:
            return None
        token_id, secret = parsed
        with self.db.transaction() as session:
            operator = session.scalars(
                select(Operator).where(Operator.token_id == token_id)
            ).first()
            if (
                operator is None
                or not operator.active
                or not tokens.matches(secret, operator.token_salt, operator.token_hash)
            ):
                return None
            return Principal(operator.id, operator.name, Role(operator.role))

    def _record_failed_login(
        self, keys: list[str], client: str | None, token_id: str | None
    ) -> None:
        throttled = self._login_throttle.exhausted(keys)
        with self._write_lock, self.db.write_transaction() as session:
            self.audit.append(
                session,
                SYSTEM,
                "auth.throttled" if throttled else "auth.failed",
                details={"client": client, "token_id": token_id},
            )


def _check_revocable(session: Session, actor: Principal, operator: Operator) -> None:
    if actor.operator_id is not None and operator.id == actor.operator_id:
        raise RevocationRefused(
            "An operator cannot revoke their own token.", operator=operator.name
        )
    if operator.role == Role.ADMIN.value and operator.active:
        admins = session.scalar(
            select(func.count()).where(Operator.role == Role.ADMIN.value, Operator.active)
        )
        if admins == 1:
            raise RevocationRefused(
                "This is the last active admin: issue another admin first.",
                operator=operator.name,
            )


def _operator_out(operator: Operator) -> OperatorOut:
    return OperatorOut(
        name=operator.name,
        role=operator.role,
        active=operator.active,
        created_at=operator.created_at,
    )
