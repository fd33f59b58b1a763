"""REST methods: sale.order.list / get."""
