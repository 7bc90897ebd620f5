-- Every process remembers items and their stocked batches as last read, so that
-- `GET /items/{id}` needs no query (src/coherence.rs, inventory::service::recall_item).
-- These triggers tell every process which item changed, through NOTIFY, delivered when the
-- transaction commits. Being triggers, no code path (nor an operator's manual UPDATE, nor a
-- foreign key's ON DELETE SET NULL) can change what an item shows without the processes
-- hearing of it. Columns no reader of an item shows (the alert scan's bookkeeping) are left
-- out, so the scan does not make every process forget.
CREATE FUNCTION stockroom_item_changed() RETURNS trigger AS $$
BEGIN
    IF TG_TABLE_NAME = 'items' THEN
        IF TG_OP = 'DELETE' THEN
            PERFORM pg_notify('stockroom_items', OLD.id::text);
        ELSE
            PERFORM pg_notify('stockroom_items', NEW.id::text);
        END IF;
    ELSE
        IF TG_OP <> 'INSERT' THEN
            PERFORM pg_notify('stockroom_items', OLD.item_id::text);
        END IF;
        IF TG_OP <> 'DELETE' THEN
            PERFORM pg_notify('stockroom_items', NEW.item_id::text);
        END IF;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER items_shown_changed
    AFTER UPDATE OF name, kind, size, unit, sku, barcode, description, min_quantity,
        target_quantity, expiry_warning_days, photo_file_id, quantity, next_expiry, version,
        created_at, updated_at ON items
    FOR EACH ROW EXECUTE FUNCTION stockroom_item_changed();

CREATE TRIGGER items_removed
    AFTER DELETE ON items
    FOR EACH ROW EXECUTE FUNCTION stockroom_item_changed();

CREATE TRIGGER batches_shown_changed
    AFTER INSERT OR DELETE OR UPDATE OF item_id, quantity, expiry_date, lot_code, received_at
    ON batches
    FOR EACH ROW EXECUTE FUNCTION stockroom_item_changed();
