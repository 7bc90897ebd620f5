DROP INDEX batches_stocked_expiry;
DROP INDEX items_low_from;
ALTER TABLE items DROP COLUMN low_from;
DROP TRIGGER items_stock_totals ON items;
DROP FUNCTION stockroom_stock_totals();
DROP TABLE stock_total_deltas;
DROP TABLE stock_totals;
