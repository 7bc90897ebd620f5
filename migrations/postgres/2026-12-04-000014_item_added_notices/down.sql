DROP TRIGGER items_added ON items;
