"""The durable registry (SQLite): viewer records, the outbox, history, results."""
from swampd.store.database import Store, Transaction
from swampd.store.records import HistoryEntry, OutboxItem, ViewerRecord

__all__ = ["Store", "Transaction", "ViewerRecord", "OutboxItem", "HistoryEntry"]
