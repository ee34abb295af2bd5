"""storefront: the shop's edge. Browsers (personas) reach it through its trustproof gateway.

Reads the catalogue from ``shopdb`` as the PostgreSQL role ``storefront`` and places orders by
calling ``orders`` and ``payments`` through its egress proxies (``TRUSTPROOF_EGRESS_ORDERS``,
``TRUSTPROOF_EGRESS_PAYMENTS``). The customer is always the verified caller
(``X-Trustproof-Principal``, set by the gateway after it stripped any caller-supplied copy; see
shopkit), never a field of the request body.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from shopkit import HttpError, Reply, Request, Router, positive_int, serve

VERSION = "shop-1.0"
MAX_ITEMS = 50
router = Router()


@router.route("GET /products")
def products(request: Request) -> Reply:
    with request.db("shopdb") as conn:
        rows = conn.execute("SELECT id, name, price_cents FROM products ORDER BY id").fetchall()
    return Reply({"products": [_product(row) for row in rows]})


@router.route("GET /products/{id}")
def product(request: Request) -> Reply:
    product_id = request.id_param()
    with request.db("shopdb") as conn:
        row = conn.execute(
            "SELECT id, name, price_cents FROM products WHERE id = %s", (product_id,)
        ).fetchone()
    if row is None:
        raise HttpError(404, f"no product {product_id}")
    return Reply(_product(row))


@router.route("POST /checkout")
def checkout(request: Request) -> Reply:
    customer = _customer(request)
    items = _items(request.json())
    order = request.call("orders", "POST", "/orders", {"customer": customer, "items": items})
    if not isinstance(order, dict) or not isinstance(order.get("id"), int):
        raise HttpError(502, "orders answered without an order id", downstream=order)
    order_id, amount = order["id"], order.get("amount_cents")
    payment_id = None
    try:
        payment = request.call(
            "payments", "POST", "/payments", {"order_id": order_id, "amount_cents": amount}
        )
        payment_id = payment.get("id") if isinstance(payment, dict) else None
        if not isinstance(payment_id, int):
            raise HttpError(502, "payments answered without a payment id", downstream=payment)
        # The order confirms its payment itself: orders asks payments (the orders->payments edge).
        confirmed = request.call("orders", "GET", f"/orders/{order_id}?payment={payment_id}")
    except HttpError as exc:
        # What was already created is reported, never hidden behind the failure.
        exc.extra.update(order_id=order_id, payment_id=payment_id)
        raise
    status = confirmed.get("status") if isinstance(confirmed, dict) else None
    body = {"order_id": order_id, "payment_id": payment_id, "amount_cents": amount}
    return Reply({**body, "status": status}, 201)


@router.route("GET /account/orders")
def account_orders(request: Request) -> Reply:
    customer = _customer(request)
    answer = request.call("orders", "GET", f"/orders?customer={quote(customer, safe='')}")
    orders = answer.get("orders", []) if isinstance(answer, dict) else []
    return Reply({"customer": customer, "orders": orders})


@router.route("GET /admin/version")
def version(request: Request) -> Reply:
    return Reply({"version": VERSION})


def _product(row: tuple[Any, ...]) -> dict[str, Any]:
    return {"id": row[0], "name": row[1], "price_cents": row[2]}


def _customer(request: Request) -> str:
    if not request.caller:
        raise HttpError(401, "no verified caller: this route is for signed-in customers")
    return request.caller


def _items(body: Any) -> list[dict[str, int]]:
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list) or not 0 < len(items) <= MAX_ITEMS:
        example = '{"items": [{"product_id": 1, "quantity": 2}]}'
        raise HttpError(400, f"send {example} with 1-{MAX_ITEMS} items")
    checked = []
    for item in items:
        if not isinstance(item, dict):
            raise HttpError(400, "each item is an object with product_id and quantity")
        checked.append(
            {
                "product_id": positive_int(item.get("product_id"), "product_id"),
                "quantity": positive_int(item.get("quantity"), "quantity"),
            }
        )
    return checked


if __name__ == "__main__":
    serve(router, calls=("orders", "payments"), datastores=("shopdb",))
