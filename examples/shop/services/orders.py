"""orders: places and lists orders in ``shopdb`` as the PostgreSQL role ``orders``.

Only ``storefront`` may call it (its gateway enforces that; see shopkit for why the identity
headers are trusted). It asks ``payments`` about an order's payment through its egress proxy
(``TRUSTPROOF_EGRESS_PAYMENTS``) when the caller names one (``GET /orders/{id}?payment=<id>``):
the schema keeps no payment id on an order, so the caller that made the payment says which one.

``DELETE /orders/{id}`` really tries ``DELETE FROM orders``. The ``orders`` role has no DELETE
grant, so PostgreSQL refuses it (SQLSTATE 42501, answered as 403): the suite uses this route to
prove the database refuses even if a gateway were misconfigured to let the request through.
"""

from __future__ import annotations

from typing import Any

from shopkit import HttpError, Reply, Request, Router, positive_int, serve

MAX_ITEMS = 50
router = Router()

ORDERS = """
SELECT o.id, o.customer, o.status, o.created_at,
       COALESCE(SUM(i.quantity * p.price_cents), 0) AS amount_cents
FROM orders o
LEFT JOIN order_items i ON i.order_id = o.id
LEFT JOIN products p ON p.id = i.product_id
"""


@router.route("GET /orders")
def list_orders(request: Request) -> Reply:
    customer = request.query.get("customer")
    with request.db("shopdb") as conn:
        if customer is None:
            rows = conn.execute(ORDERS + " GROUP BY o.id ORDER BY o.id").fetchall()
        else:
            rows = conn.execute(
                ORDERS + " WHERE o.customer = %s GROUP BY o.id ORDER BY o.id", (customer,)
            ).fetchall()
    return Reply({"orders": [_order(row) for row in rows]})


@router.route("GET /orders/{id}")
def get_order(request: Request) -> Reply:
    order_id = request.id_param()
    payment_id = request.query.get("payment")
    if payment_id is not None:
        payment_id = str(positive_int(payment_id, "payment"))
    with request.db("shopdb") as conn:
        row = conn.execute(ORDERS + " WHERE o.id = %s GROUP BY o.id", (order_id,)).fetchone()
        if row is None:
            raise HttpError(404, f"no order {order_id}")
        items = conn.execute(
            "SELECT i.product_id, p.name, i.quantity, p.price_cents"
            " FROM order_items i JOIN products p ON p.id = i.product_id"
            " WHERE i.order_id = %s ORDER BY i.product_id",
            (order_id,),
        ).fetchall()
    order = _order(row)  # the connection is closed before any downstream call
    order["items"] = [
        {"product_id": pid, "name": name, "quantity": qty, "price_cents": price}
        for pid, name, qty, price in items
    ]
    order["payment"] = None
    var, egress = request.env.egress("payments")
    if payment_id is not None and egress is None:
        order["payment"] = {"id": int(payment_id), "lookup": f"skipped: {var} is not set"}
    elif payment_id is not None:
        payment = request.call("payments", "GET", f"/payments/{payment_id}")
        if not isinstance(payment, dict) or payment.get("order_id") != order_id:
            raise HttpError(409, f"payment {payment_id} is not a payment of order {order_id}")
        order["payment"] = {k: payment.get(k) for k in ("id", "amount_cents", "state")}
    return Reply(order)


@router.route("POST /orders")
def place_order(request: Request) -> Reply:
    body = request.json()
    customer = body.get("customer") if isinstance(body, dict) else None
    if not isinstance(customer, str) or not 0 < len(customer) <= 200:
        raise HttpError(400, "customer must be a non-empty string")
    quantities = _quantities(body.get("items"))
    with request.db("shopdb") as conn:  # one transaction: the order and its items, or nothing
        prices = dict(
            conn.execute(
                "SELECT id, price_cents FROM products WHERE id = ANY(%s)", (list(quantities),)
            ).fetchall()
        )
        unknown = sorted(set(quantities) - set(prices))
        if unknown:
            raise HttpError(400, f"unknown product ids: {unknown}")
        inserted = conn.execute(
            "INSERT INTO orders (customer) VALUES (%s) RETURNING id", (customer,)
        ).fetchone()
        if inserted is None:
            raise HttpError(500, "INSERT ... RETURNING returned no row")
        order_id = inserted[0]
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO order_items (order_id, product_id, quantity) VALUES (%s, %s, %s)",
                [(order_id, pid, qty) for pid, qty in quantities.items()],
            )
    amount = sum(prices[pid] * qty for pid, qty in quantities.items())
    return Reply({"id": order_id, "customer": customer, "amount_cents": amount}, 201)


@router.route("DELETE /orders/{id}")
def delete_order(request: Request) -> Reply:
    order_id = request.id_param()
    with request.db("shopdb") as conn:  # the role has no DELETE grant: PostgreSQL says 42501
        deleted = conn.execute("DELETE FROM orders WHERE id = %s", (order_id,)).rowcount
    if not deleted:
        raise HttpError(404, f"no order {order_id}")
    return Reply({"deleted": order_id})


def _order(row: tuple[Any, ...]) -> dict[str, Any]:
    order_id, customer, status, created_at, amount = row
    return {
        "id": order_id,
        "customer": customer,
        "status": status,
        "created_at": created_at.isoformat(),
        "amount_cents": int(amount),
    }


def _quantities(items: Any) -> dict[int, int]:
    if not isinstance(items, list) or not 0 < len(items) <= MAX_ITEMS:
        raise HttpError(400, f"items must be a list of 1-{MAX_ITEMS} objects")
    quantities: dict[int, int] = {}
    for item in items:
        if not isinstance(item, dict):
            raise HttpError(400, "each item is an object with product_id and quantity")
        product_id = positive_int(item.get("product_id"), "product_id")
        quantities[product_id] = quantities.get(product_id, 0) + positive_int(
            item.get("quantity"), "quantity"
        )
    return quantities


if __name__ == "__main__":
    serve(router, calls=("payments",), datastores=("shopdb",))
