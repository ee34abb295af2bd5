"""payments: records payments in ``shopdb`` as the PostgreSQL role ``payments``.

``storefront`` may create a payment and ``orders`` may read one (their gateways enforce that; see
shopkit for why the identity headers are trusted). ``POST /refunds`` exists so that the suite can
prove nobody may call it; were a gateway to let a call through anyway, it still refuses (409).
"""

from __future__ import annotations

from typing import Any

from shopkit import HttpError, Reply, Request, Router, positive_int, serve

router = Router()


@router.route("POST /payments")
def create_payment(request: Request) -> Reply:
    body = request.json()
    if not isinstance(body, dict):
        raise HttpError(400, 'send {"order_id": 1, "amount_cents": 3000}')
    order_id = positive_int(body.get("order_id"), "order_id")
    amount = body.get("amount_cents")
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 <= amount < 2**31:
        raise HttpError(400, "amount_cents must be a non-negative integer")
    with request.db("shopdb") as conn:
        row = conn.execute(
            "INSERT INTO payments (order_id, amount_cents) VALUES (%s, %s)"
            " RETURNING id, order_id, amount_cents, state",
            (order_id, amount),
        ).fetchone()
    if row is None:
        raise HttpError(500, "INSERT ... RETURNING returned no row")
    return Reply(_payment(row), 201)


@router.route("GET /payments/{id}")
def get_payment(request: Request) -> Reply:
    payment_id = request.id_param()
    with request.db("shopdb") as conn:
        row = conn.execute(
            "SELECT id, order_id, amount_cents, state FROM payments WHERE id = %s", (payment_id,)
        ).fetchone()
    if row is None:
        raise HttpError(404, f"no payment {payment_id}")
    return Reply(_payment(row))


@router.route("POST /refunds")
def refund(request: Request) -> Reply:
    raise HttpError(409, "refunds are not supported")


def _payment(row: tuple[Any, ...]) -> dict[str, Any]:
    payment_id, order_id, amount, state = row
    return {"id": payment_id, "order_id": order_id, "amount_cents": amount, "state": state}


if __name__ == "__main__":
    serve(router, datastores=("shopdb",))
