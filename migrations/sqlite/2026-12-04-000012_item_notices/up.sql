-- Every process remembers items and their stocked batches as last read, so that
-- `GET /items/{id}` needs no query (src/coherence.rs, inventory::service::recall_item).
-- These triggers name the item that changed to `stockroom_changed`, a function every
-- Stockroom connection registers: the process forgets the item once the change commits, and
-- other processes on the same file through a shared counter. Being triggers, no code path
-- (nor a foreign key's ON DELETE SET NULL) can change what an item shows without it.
-- Columns no reader of an item shows (the alert scan's bookkeeping) are left out.
-- A connection without the function (the sqlite3 shell) cannot change items or batches:
-- stop Stockroom, or change them through the API.
CREATE TRIGGER items_shown_changed
    AFTER UPDATE OF name, kind, size, unit, sku, barcode, description, min_quantity,
        target_quantity, expiry_warning_days, photo_file_id, quantity, next_expiry, version,
        created_at, updated_at ON items
BEGIN
    SELECT stockroom_changed('stockroom_items', NEW.id);
END;

CREATE TRIGGER items_removed AFTER DELETE ON items
BEGIN
    SELECT stockroom_changed('stockroom_items', OLD.id);
END;

CREATE TRIGGER batches_added AFTER INSERT ON batches
BEGIN
    SELECT stockroom_changed('stockroom_items', NEW.item_id);
END;

CREATE TRIGGER batches_shown_changed
    AFTER UPDATE OF item_id, quantity, expiry_date, lot_code, received_at ON batches
BEGIN
    SELECT stockroom_changed('stockroom_items', OLD.item_id);
    SELECT stockroom_changed('stockroom_items', NEW.item_id);
END;

CREATE TRIGGER batches_removed AFTER DELETE ON batches
BEGIN
    SELECT stockroom_changed('stockroom_items', OLD.item_id);
END;
