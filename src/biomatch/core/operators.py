"""Operators: issuing, listing and revoking API tokens, and authenticating them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from biomatch.accountability import tokens
from biomatch.accountability.principal import Principal
from biomatch.accountability.roles import Action, Role
from biomatch.core.state import (
    CoreState,
    check_name,
)
from biomatch.errors import (
    OperatorExists,
    OperatorNotFound,
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
        check_name("operator name", name)
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
            operator.active = False
            self.audit.append(session, actor, "operator.revoke", details={"operator": name})
            return _operator_out(operator)

    def authenticate(self, token: str | None) -> Principal:
        parsed = tokens.parse(token or "")
        if parsed is None:
            raise Unauthenticated("A bearer token of the form bm_<id>_<secret> is required.")
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
                raise Unauthenticated("The token is unknown, revoked or wrong.")
            principal = Principal(operator.id, operator.name, Role(operator.role))
        self._request_limit.take(principal.name)
        return principal


def _operator_out(operator: Operator) -> OperatorOut:
    return OperatorOut(
        name=operator.name,
        role=operator.role,
        active=operator.active,
        created_at=operator.created_at,
    )
