"""SQLite plumbing shared by the region and clearinghouse stores."""

from storage.sqlite import Database, open_database

__all__ = ["Database", "open_database"]
