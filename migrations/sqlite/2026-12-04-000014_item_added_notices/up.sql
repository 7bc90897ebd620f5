-- A new item shows on list pages, which every process also remembers (rendered, see
-- inventory::service::list_json); they are forgotten on any item's notice, so a new item
-- must announce itself too (an item created without stock adds no batch to announce it).
CREATE TRIGGER items_added AFTER INSERT ON items
BEGIN
    SELECT stockroom_changed('stockroom_items', NEW.id);
END;
