DROP TRIGGER batches_shown_changed ON batches;
DROP TRIGGER items_removed ON items;
DROP TRIGGER items_shown_changed ON items;
DROP FUNCTION stockroom_item_changed();
