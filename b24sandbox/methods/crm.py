"""REST methods: crm.deal.list, crm.item.list, crm.invoice.list, crm.enum.*."""
