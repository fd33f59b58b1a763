"""What a bulk job keeps of the owners it read before a batch, and how big its batches are."""

import math

import pytest

from b24app.jobs.orders import seen_from_json, seen_owners, seen_to_json
from b24app.jobs.service import bind_batch_size


def rows(*pairs):
    """Rows of ``crm.orderentity.list`` for (order, deal) pairs."""
    return [{"orderId": str(o), "ownerTypeId": "2", "ownerId": str(d)} for o, d in pairs]


def test_orders_missing_from_a_short_page_were_read_as_unbound():
    assert seen_owners([1, 2, 3], rows((2, 7))) == {1: None, 2: (2, 7), 3: None}


def test_a_full_page_says_nothing_of_the_orders_after_its_last_row():
    page = rows(*[(order, 9) for order in range(1, 51)])
    seen = seen_owners([40, 50, 51, 60], page)
    # 51 and 60 may be bound: the page ended before them.
    assert seen == {40: (2, 9), 50: (2, 9)}


def test_a_full_page_of_unreadable_rows_says_nothing():
    assert seen_owners([1, 2], [{"orderId": "x"}] * 50) == {}


def test_owners_seen_survive_storage():
    seen = {5: (2, 3), 6: None, 7: (31, 4)}
    assert seen_from_json(seen_to_json(seen)) == seen
    assert seen_to_json({}) is None and seen_from_json(None) == {}


@pytest.mark.parametrize(
    ("orders", "size"),
    [
        (3, 48),
        (49, 49),
        (96, 48),
        (98, 49),
        (100, 48),
        (1000, 48),
        (2304, 48),
        (2352, 49),
        (10000, 49),
    ],
)
def test_batches_keep_a_command_for_the_next_batchs_owners_unless_it_costs_a_batch(orders, size):
    assert bind_batch_size(orders) == size
    assert math.ceil(orders / size) == math.ceil(orders / 49)
