DROP INDEX items_expiry_window;
DROP INDEX items_expiry_sort;
ALTER TABLE items DROP COLUMN expiry_sort;
