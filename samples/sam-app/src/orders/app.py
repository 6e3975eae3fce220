"""Orders API handlers: both functions ship this directory, packed once."""
import json
import os

from orders_common.money import format_cents

ORDERS = {
    "1001": {"id": "1001", "item": "coffee beans", "cents": 1450},
    "1002": {"id": "1002", "item": "grinder", "cents": 8900},
}


def _response(status, body):
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}


def list_orders(event, context):
    items = [dict(o, price=format_cents(o["cents"])) for o in ORDERS.values()]
    return _response(200, {"stage": os.environ.get("STAGE", "dev"), "orders": items})


def get_order(event, context):
    order_id = ((event or {}).get("pathParameters") or {}).get("id", "")
    order = ORDERS.get(order_id)
    if order is None:
        return _response(404, {"error": f"no order {order_id}"})
    return _response(200, dict(order, price=format_cents(order["cents"])))
