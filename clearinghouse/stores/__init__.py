"""The clearinghouse's repositories, one per aggregate, each over its own table(s) of the
clearinghouse's SQLite file; ``clearinghouse.store.ClearinghouseStore`` holds them all."""
