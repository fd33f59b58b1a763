"""Words the seeder builds realistic deal and invoice titles from."""

PRODUCTS = (
    "Office furniture",
    "Laptop fleet",
    "Coffee machines",
    "Printing services",
    "Website redesign",
    "Annual support contract",
    "Warehouse shelving",
    "Spare parts",
    "Corporate gifts",
    "Cleaning supplies",
    "Network equipment",
    "Staff training",
    "Delivery vans lease",
    "Conference catering",
    "Security cameras",
    "Cloud storage plan",
    "Packaging materials",
    "Accounting audit",
    "Trade show booth",
    "Solar panels",
)

COMPANIES = (
    "Northbay Logistics",
    "Greenfield Farms",
    "Bluestone Retail",
    "Maple & Oak",
    "Vector Systems",
    "Silverline Hotels",
    "Harbor Foods",
    "Quantum Print",
    "Redwood Clinic",
    "Summit Builders",
    "Lakeside School",
    "Orbit Telecom",
    "Pinewood Dental",
    "Crescent Motors",
    "Atlas Pharmacy",
    "Brightpath Media",
)

QUALIFIERS = ("", "", "", "Q1", "Q2", "Q3", "Q4", "renewal", "urgent", "pilot", "phase 2")

CANCEL_REASONS = (
    "Customer changed their mind",
    "Out of stock",
    "Duplicate order",
    "Payment not received",
)

CUSTOMER_NOTES = (
    "Please call before delivery",
    "Leave at the reception",
    "Gift wrapping, please",
    "Deliver after 6 pm",
)

DEAL_COMMENTS = (
    "Follow up next week",
    "Waiting for the signed contract",
    "Discount agreed with the director",
    "Send the price list",
)
