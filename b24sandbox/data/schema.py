"""The sandbox portal's tables and the field maps its list methods read them through.

Every table carries ``portal_id``: one SQLite database serves all portals of a process.
Columns are named after the fields (``accountNumber`` -> ``account_number``); the UPPER_CASE
methods (``crm.deal.list``, ``crm.invoice.list``) map their names onto the same columns.
"""

from __future__ import annotations

import re
import sqlite3

from b24sandbox.data import search
from b24sandbox.filters import Field, FieldMap


def snake(name: str) -> str:
    """Return the column name of a camelCase field: ``accountNumber`` -> ``account_number``."""
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def camel_fields(spec: str) -> list[Field]:
    """Build fields from ``"name:kind name:kind ..."``; columns are the snake_case names."""
    fields = []
    for item in spec.split():
        name, kind = item.split(":")
        fields.append(Field(name, snake(name), kind))
    return fields


# sale.order.list / sale.order.get scalar fields, in the order the docs print them.
ORDER_FIELDS = FieldMap(
    camel_fields(
        "accountNumber:str additionalInfo:str affiliateId:int canceled:char comments:str "
        "companyId:int currency:str dateCanceled:datetime dateInsert:datetime dateLock:datetime "
        "dateMarked:datetime dateStatus:datetime dateUpdate:datetime deducted:char "
        "discountValue:float empCanceledId:int empMarkedId:int empStatusId:int "
        "externalOrder:char id:int id1c:str lid:str lockedBy:str marked:char orderTopic:str "
        "payed:char personTypeId:int personTypeXmlId:str price:float reasonCanceled:str "
        "reasonMarked:str recountFlag:char recurringId:str responsibleId:int statusId:str "
        "statusXmlId:str taxValue:float updated1c:char userDescription:str userId:int "
        "version:int version1c:str xmlId:str"
    )
)

# crm.item.list entityTypeId=2 (camelCase).
DEAL_ITEM_FIELDS = FieldMap(
    camel_fields(
        "id:int title:str typeId:str categoryId:int stageId:str stageSemanticId:str "
        "previousStageId:str isNew:char isRecurring:char isReturnCustomer:char "
        "isRepeatedApproach:char probability:int currencyId:str opportunity:float "
        "isManualOpportunity:char taxValue:float companyId:int contactId:int quoteId:int "
        "mycompanyId:int begindate:date closedate:date opened:char closed:char comments:str "
        "assignedById:int createdBy:int updatedBy:int movedBy:int createdTime:datetime "
        "updatedTime:datetime movedTime:datetime sourceId:str sourceDescription:str leadId:int "
        "additionalInfo:str locationId:str originatorId:str originId:str "
        "lastActivityTime:datetime lastActivityBy:int"
    )
)

# crm.deal.list names that differ from upper(snake(camel)).
_DEAL_UPPER_RENAMES = {
    "createdBy": "CREATED_BY_ID",
    "updatedBy": "MODIFY_BY_ID",
    "movedBy": "MOVED_BY_ID",
    "createdTime": "DATE_CREATE",
    "updatedTime": "DATE_MODIFY",
}

# crm.deal.list (UPPER_CASE, every value rendered as a string).
DEAL_LIST_FIELDS = FieldMap(
    [
        Field(_DEAL_UPPER_RENAMES.get(f.name, f.column.upper()), f.column, f.kind)
        for f in DEAL_ITEM_FIELDS
        if f.name != "previousStageId"
    ],
    case_insensitive=True,
)

# crm.item.list entityTypeId=31 (smart invoices).
INVOICE_ITEM_FIELDS = FieldMap(
    camel_fields(
        "id:int xmlId:str title:str accountNumber:str categoryId:int stageId:str "
        "previousStageId:str opened:char opportunity:float isManualOpportunity:char "
        "taxValue:float currencyId:str companyId:int contactId:int mycompanyId:int "
        "begindate:date closedate:date comments:str isRecurring:char sourceId:str "
        "sourceDescription:str locationId:str assignedById:int createdBy:int updatedBy:int "
        "movedBy:int createdTime:datetime updatedTime:datetime movedTime:datetime "
        "lastActivityTime:datetime lastActivityBy:int parentId2:int"
    )
)

# crm.invoice.list (old invoices, type 5), the field table of the docs.
OLD_INVOICE_FIELDS = FieldMap(
    [
        Field(name, name.lower(), kind)
        for name, kind in (
            item.split(":")
            for item in (
                "ID:int ACCOUNT_NUMBER:str ORDER_TOPIC:str STATUS_ID:str PRICE:float "
                "CURRENCY:str PAYED:char PERSON_TYPE_ID:int PAY_SYSTEM_ID:int LID:str "
                "IS_RECURRING:char XML_ID:str COMMENTS:str USER_DESCRIPTION:str "
                "TAX_VALUE:float CREATED_BY:int DATE_BILL:date DATE_INSERT:datetime "
                "DATE_MARKED:datetime DATE_PAY_BEFORE:date DATE_PAYED:datetime "
                "DATE_STATUS:datetime DATE_UPDATE:datetime EMP_PAYED_ID:int EMP_STATUS_ID:int "
                "PAY_VOUCHER_DATE:date PAY_VOUCHER_NUM:str REASON_MARKED:str RESPONSIBLE_ID:int "
                "RESPONSIBLE_LOGIN:str RESPONSIBLE_NAME:str RESPONSIBLE_LAST_NAME:str "
                "RESPONSIBLE_SECOND_NAME:str RESPONSIBLE_EMAIL:str RESPONSIBLE_WORK_POSITION:str "
                "RESPONSIBLE_PERSONAL_PHOTO:str UF_DEAL_ID:int UF_QUOTE_ID:int "
                "UF_COMPANY_ID:int UF_CONTACT_ID:int UF_MYCOMPANY_ID:int"
            ).split()
        )
    ],
    case_insensitive=True,
)

# crm.orderentity.list; the core's default sort is OWNER_ID ascending.
ORDER_ENTITY_FIELDS = FieldMap(
    [
        Field("orderId", "order_id", "int"),
        Field("ownerId", "owner_id", "int"),
        Field("ownerTypeId", "owner_type_id", "int"),
    ]
)

# sale.status.list, keys in the order the docs print them (alphabetical, as the sale REST
# views sort them).
SALE_STATUS_FIELDS = FieldMap(
    camel_fields("color:str id:str notify:char sort:int type:char xmlId:str")
)

# sale.statusLang.list.
SALE_STATUS_LANG_FIELDS = FieldMap(camel_fields("description:str lid:str name:str statusId:str"))

# crm.status.list: UPPER_CASE, every value a string (CATEGORY_ID and SEMANTICS may be null).
CRM_STATUS_FIELDS = FieldMap(
    [
        Field(name, name.lower(), kind)
        for name, kind in (
            item.split(":")
            for item in (
                "ID:int ENTITY_ID:str STATUS_ID:str NAME:str NAME_INIT:str SORT:int "
                "SYSTEM:char CATEGORY_ID:int COLOR:str SEMANTICS:char"
            ).split()
        )
    ],
    case_insensitive=True,
)

_SQL_TYPES = {
    "int": "INTEGER",
    "float": "REAL",
    "str": "TEXT",
    "char": "TEXT",
    "datetime": "TEXT",
    "date": "TEXT",
}

# Text columns searched with LIKE: NOCASE makes LIKE prefix scans use the index, and matches
# the case-insensitive collation a MySQL-backed Bitrix24 compares strings with.
_NOCASE = {"account_number", "title"}

TABLES: dict[str, FieldMap] = {
    "sale_order": ORDER_FIELDS,
    "sale_status": SALE_STATUS_FIELDS,
    "crm_deal": DEAL_ITEM_FIELDS,
    "crm_smart_invoice": INVOICE_ITEM_FIELDS,
    "crm_invoice": OLD_INVOICE_FIELDS,
}

_INDEXES = (
    "CREATE INDEX IF NOT EXISTS sale_order_account ON sale_order (portal_id, account_number)",
    "CREATE INDEX IF NOT EXISTS sale_order_inserted ON sale_order (portal_id, date_insert)",
    "CREATE INDEX IF NOT EXISTS sale_order_status ON sale_order (portal_id, status_id)",
    "CREATE INDEX IF NOT EXISTS crm_deal_title ON crm_deal (portal_id, title)",
    "CREATE INDEX IF NOT EXISTS crm_deal_stage ON crm_deal (portal_id, stage_id)",
    "CREATE INDEX IF NOT EXISTS crm_smart_invoice_title ON crm_smart_invoice (portal_id, title)",
    "CREATE INDEX IF NOT EXISTS crm_smart_invoice_account"
    " ON crm_smart_invoice (portal_id, account_number)",
    "CREATE INDEX IF NOT EXISTS crm_invoice_account ON crm_invoice (portal_id, account_number)",
    "CREATE INDEX IF NOT EXISTS crm_order_entity_owner"
    " ON crm_order_entity (portal_id, owner_type_id, owner_id)",
)


def table_ddl(table: str, fields: FieldMap) -> str:
    """Return the CREATE TABLE statement of an entity table."""
    columns = ["portal_id INTEGER NOT NULL"]
    for field in fields:
        collate = " COLLATE NOCASE" if field.column in _NOCASE else ""
        columns.append(f"{field.column} {_SQL_TYPES[field.kind]}{collate}")
    columns.append("PRIMARY KEY (portal_id, id)")
    return f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(columns)})"


ORDER_ENTITY_DDL = (
    "CREATE TABLE IF NOT EXISTS crm_order_entity ("
    "portal_id INTEGER NOT NULL, order_id INTEGER NOT NULL, owner_type_id INTEGER NOT NULL, "
    "owner_id INTEGER NOT NULL, "
    # One owner per order: the primary key makes a second owner impossible, not just unlikely.
    "PRIMARY KEY (portal_id, order_id))"
)


SALE_STATUS_LANG_DDL = (
    "CREATE TABLE IF NOT EXISTS sale_status_lang ("
    "portal_id INTEGER NOT NULL, description TEXT, lid TEXT NOT NULL, name TEXT NOT NULL, "
    "status_id TEXT NOT NULL, PRIMARY KEY (portal_id, status_id, lid))"
)

# extra_semantics is not a field: it is EXTRA.SEMANTICS, NULL where a row has no EXTRA.
CRM_STATUS_DDL = (
    "CREATE TABLE IF NOT EXISTS crm_status ("
    "portal_id INTEGER NOT NULL, id INTEGER NOT NULL, entity_id TEXT NOT NULL, "
    "status_id TEXT NOT NULL, name TEXT NOT NULL, name_init TEXT NOT NULL, sort INTEGER, "
    "system TEXT NOT NULL, category_id INTEGER, color TEXT, semantics TEXT, "
    "extra_semantics TEXT, PRIMARY KEY (portal_id, id))"
)


def create_tables(conn: sqlite3.Connection) -> None:
    """Create every data table and index (idempotent)."""
    for table, fields in TABLES.items():
        conn.execute(table_ddl(table, fields))
    conn.execute(ORDER_ENTITY_DDL)
    conn.execute(SALE_STATUS_LANG_DDL)
    conn.execute(CRM_STATUS_DDL)
    for statement in _INDEXES:
        conn.execute(statement)
    search.create(conn)


def insert_sql(table: str, fields: FieldMap) -> str:
    """Return the INSERT statement matching the row tuples the seeder builds."""
    columns = ["portal_id", *(f.column for f in fields)]
    marks = ", ".join("?" for _ in columns)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
