"""The collections sale.order.get adds to an order: basket, payments, shipments, properties.

They are derived from the stored order row with a generator seeded by the order's own
``xmlId``, so an order always shows the same basket without storing it.
"""

from __future__ import annotations

import random
from typing import Any

from b24sandbox import seed_words as words
from b24sandbox.data.render import number

_FIRST_NAMES = ("Olga", "Ivan", "Maria", "Peter", "Sofia", "Alex", "Nina", "Paul")
_LAST_NAMES = ("Smirnova", "Petrov", "Ivanova", "Keller", "Novak", "Berg", "Lind", "Moreau")
_DELIVERIES = ((1, "Courier Delivery"), (2, "Pickup Point"), (3, "Post"))
_PAY_SYSTEMS = ((48, "Card Payment"), (49, "Cash"), (50, "Bank Transfer"))


def _split(total: float, parts: int, rng: random.Random) -> list[float]:
    """Split ``total`` into ``parts`` positive amounts that add up exactly."""
    if parts == 1:
        return [round(total, 2)]
    cuts = sorted(rng.uniform(0.2, 0.8) for _ in range(parts - 1))
    shares = [b - a for a, b in zip([0.0, *cuts], [*cuts, 1.0], strict=True)]
    amounts = [round(total * s, 2) for s in shares[:-1]]
    amounts.append(round(total - sum(amounts), 2))
    return amounts


def _code(rng: random.Random) -> str:
    """Return a ``bx_...`` external code."""
    return f"bx_{rng.getrandbits(52):013x}"


def order_collections(order: dict[str, Any]) -> dict[str, Any]:
    """Return the related objects of one order, shaped as sale.order.get prints them."""
    rng = random.Random(order["xmlId"])
    order_id = order["id"]
    currency = order["currency"]
    inserted = order["dateInsert"]
    delivery_id, delivery_name = rng.choice(_DELIVERIES)
    delivery_price = float(rng.choice((0, 0, 300, 500)))
    goods_total = max(float(order["price"]) - delivery_price, 0.0)
    if goods_total == 0.0:
        delivery_price = float(order["price"])
    count = rng.randint(1, 3)
    basket = []
    for index, amount in enumerate(_split(goods_total, count, rng)):
        quantity = rng.choice((1, 1, 1, 2))
        unit = round(amount / quantity, 2)
        basket_id = order_id * 10 + index
        basket.append(
            {
                "barcodeMulti": "N",
                "basePrice": number(unit),
                "canBuy": "Y",
                "currency": currency,
                "customPrice": "N",
                "dateInsert": inserted,
                "dateUpdate": order["dateUpdate"],
                "discountPrice": 0,
                "id": str(basket_id),  # the docs print basket ids as strings
                "lid": "s1",
                "measureCode": "796",
                "measureName": "pcs",
                "module": "catalog",
                "name": rng.choice(words.PRODUCTS),
                "orderId": str(order_id),
                "price": number(unit),
                "productId": rng.randrange(100, 999),
                "quantity": quantity,
                "sort": 100 * (index + 1),
                "vatIncluded": "Y",
                "vatRate": 0.2 if currency == "RUB" else None,
                "weight": 0,
                "xmlId": _code(rng),
            }
        )
    pay_system_id, pay_system_name = rng.choice(_PAY_SYSTEMS)
    paid = order["payed"] == "Y"
    payment = {
        "accountNumber": f"{order['accountNumber']}/1",
        "comments": "",
        "companyId": 0,
        "currency": currency,
        "dateBill": inserted,
        "datePaid": order["dateStatus"] if paid else None,
        "externalPayment": "N",
        "id": order_id * 2 - 1,
        "isReturn": "N",
        "marked": "N",
        "orderId": order_id,
        "paid": "Y" if paid else "N",
        "paySystemId": pay_system_id,
        "paySystemIsCash": "Y" if pay_system_id == 49 else "N",
        "paySystemName": pay_system_name,
        "responsibleId": order["responsibleId"],
        "sum": number(order["price"]),
        "xmlId": _code(rng),
    }
    shipped = order["deducted"] == "Y"
    shipment = {
        "accountNumber": f"{order['accountNumber']}/2",
        "allowDelivery": "Y" if shipped else "N",
        "basePriceDelivery": number(delivery_price),
        "canceled": order["canceled"],
        "currency": currency,
        "dateInsert": inserted,
        "deducted": "Y" if shipped else "N",
        "deliveryId": delivery_id,
        "deliveryName": delivery_name,
        "id": order_id * 2,
        "orderId": order_id,
        "priceDelivery": number(delivery_price),
        "responsibleId": order["responsibleId"],
        "shipmentItems": [
            {
                "basketId": int(item["id"]),
                "id": int(item["id"]) + 1,
                "orderDeliveryId": order_id * 2,
                "quantity": item["quantity"],
            }
            for item in basket
        ],
        "statusId": "DF" if shipped else "DN",
        "trackingNumber": "",
        "xmlId": _code(rng),
    }
    first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
    properties = [
        ("FIO", "First Last", f"{first} {last}"),
        ("EMAIL", "E-mail", f"{first.lower()}.{last.lower()}@example.test"),
        ("PHONE", "Phone", f"+7 900 {rng.randrange(100, 999)} {rng.randrange(1000, 9999)}"),
    ]
    return {
        "basketItems": basket,
        "clients": [],
        "payments": [payment],
        "propertyValues": [
            {
                "code": code,
                "id": order_id * 10 + index,
                "name": name,
                "orderPropsId": 20 + index,
                "orderPropsXmlId": None,
                "value": value,
            }
            for index, (code, name, value) in enumerate(properties)
        ],
        "requisiteLink": {
            "bankDetailId": 0,
            "mcBankDetailId": 0,
            "mcRequisiteId": 0,
            "requisiteId": 0,
        },
        "shipments": [shipment],
        "tradeBindings": [],
    }
