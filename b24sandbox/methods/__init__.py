"""REST method handlers; importing this package registers every method."""

from b24sandbox.methods import crm, event, orderentity, placement, sale, system

__all__ = ["crm", "event", "orderentity", "placement", "sale", "system"]
