-- The staff dashboard in constant time, however many items the store holds.

-- Items and units in stock, kept by a trigger with every change to items (no code path can
-- forget them). Writers do not update one shared row (every stock change would queue
-- behind it, and transactions touching several items could deadlock on it): each change
-- appends a delta, and the deltas are folded into the one row every few seconds
-- (inventory::service::fold_stock_totals). A reader adds the few deltas not folded yet.
CREATE TABLE stock_totals (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    items BIGINT NOT NULL,
    units BIGINT NOT NULL
);
INSERT INTO stock_totals (id, items, units)
    SELECT 1, COUNT(*), COALESCE(SUM(quantity), 0) FROM items;
CREATE TABLE stock_total_deltas (
    id BIGSERIAL PRIMARY KEY,
    items BIGINT NOT NULL,
    units BIGINT NOT NULL
);
CREATE FUNCTION stockroom_stock_totals() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO stock_total_deltas (items, units) VALUES (1, NEW.quantity);
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO stock_total_deltas (items, units) VALUES (-1, -OLD.quantity);
    ELSIF NEW.quantity <> OLD.quantity THEN
        INSERT INTO stock_total_deltas (items, units) VALUES (0, NEW.quantity - OLD.quantity);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER items_stock_totals
    AFTER INSERT OR DELETE OR UPDATE OF quantity ON items
    FOR EACH ROW EXECUTE FUNCTION stockroom_stock_totals();

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
