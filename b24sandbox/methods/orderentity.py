"""REST methods: crm.orderentity.*."""
