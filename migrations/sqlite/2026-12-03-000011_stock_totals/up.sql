-- The staff dashboard in constant time, however many items the store holds.

-- Items and units in stock, kept by triggers with every change to items (no code path can
-- forget them). SQLite has one writer at a time, so one row is no bottleneck; the deltas
-- table exists for PostgreSQL's sake (where writers append instead of queueing on one
-- row) and stays empty here, so both backends read totals the same way.
CREATE TABLE stock_totals (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    items BIGINT NOT NULL,
    units BIGINT NOT NULL
);
INSERT INTO stock_totals (id, items, units)
    SELECT 1, COUNT(*), COALESCE(SUM(quantity), 0) FROM items;
CREATE TABLE stock_total_deltas (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    items BIGINT NOT NULL,
    units BIGINT NOT NULL
);
CREATE TRIGGER items_totals_insert AFTER INSERT ON items BEGIN
    UPDATE stock_totals SET items = items + 1, units = units + NEW.quantity WHERE id = 1;
END;
CREATE TRIGGER items_totals_delete AFTER DELETE ON items BEGIN
    UPDATE stock_totals SET items = items - 1, units = units - OLD.quantity WHERE id = 1;
END;
CREATE TRIGGER items_totals_update AFTER UPDATE OF quantity ON items
    WHEN NEW.quantity <> OLD.quantity BEGIN
    UPDATE stock_totals SET units = units + NEW.quantity - OLD.quantity WHERE id = 1;
END;

-- The first day an item counts as low if its stock stays as it is (1970-01-01: low now;
-- NULL: never, whatever expires), set by the same check that raises low-stock alerts, in
-- the transaction of every stock change. Counting low items is then a range of one index.
-- Every item is checked again by the next scan (at start), which fills it in; until then
-- the dashboard counts items marked due the slow way, so it is exact throughout.
ALTER TABLE items ADD COLUMN low_from DATE;
UPDATE items SET alert_due = TRUE;
CREATE INDEX items_low_from ON items (low_from) WHERE low_from IS NOT NULL;

-- Expired and expiring batches are counted among the batches that still hold stock, not
-- among every batch ever emptied.
CREATE INDEX batches_stocked_expiry ON batches (expiry_date) WHERE quantity > 0;
