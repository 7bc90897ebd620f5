-- Sorting items by expiry must not sort the whole table: keep the sort key in a
-- non-null, indexed column (9999-12-31 for items without dated stock).
ALTER TABLE items ADD COLUMN expiry_sort DATE NOT NULL DEFAULT DATE '9999-12-31';
UPDATE items SET expiry_sort = COALESCE(next_expiry, DATE '9999-12-31');
DROP INDEX items_next_expiry;
CREATE INDEX items_next_expiry ON items (next_expiry);
CREATE INDEX items_expiry_sort ON items (expiry_sort, id);
-- The widest "expiring soon" window in use bounds the dashboard's range scan.
CREATE INDEX items_expiry_window ON items (expiry_warning_days);
