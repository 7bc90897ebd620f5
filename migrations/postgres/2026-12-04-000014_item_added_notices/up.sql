-- A new item shows on list pages, which every process also remembers (rendered, see
-- inventory::service::list_json); they are forgotten on any item's notice, so a new item
-- must announce itself too (an item created without stock adds no batch to announce it).
CREATE TRIGGER items_added
    AFTER INSERT ON items
    FOR EACH ROW EXECUTE FUNCTION stockroom_item_changed();
