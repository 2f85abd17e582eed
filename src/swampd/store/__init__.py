"""The durable registry (SQLite): runs of every kind, launches, the outbox, history, results."""
from swampd.store.database import RegistryError, Store, Transaction
from swampd.store.records import HistoryEntry, LaunchEntry, OutboxItem, RunRecord, ViewerRecord

__all__ = ["Store", "Transaction", "RegistryError", "RunRecord", "ViewerRecord", "OutboxItem", "HistoryEntry",
           "LaunchEntry"]
