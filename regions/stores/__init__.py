"""A region's repositories, one per aggregate, each over its own table(s) of the region's
SQLite file; ``regions.store.RegionStore`` opens the file and holds them all."""
