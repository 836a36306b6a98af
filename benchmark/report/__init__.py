"""Reports over run records: aggregation across seeds, tables, sweep-end callback."""
