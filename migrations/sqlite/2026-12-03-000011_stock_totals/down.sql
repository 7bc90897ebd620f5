DROP INDEX batches_stocked_expiry;
DROP INDEX items_low_from;
ALTER TABLE items DROP COLUMN low_from;
DROP TRIGGER items_totals_update;
DROP TRIGGER items_totals_delete;
DROP TRIGGER items_totals_insert;
DROP TABLE stock_total_deltas;
DROP TABLE stock_totals;
