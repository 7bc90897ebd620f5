DROP TRIGGER items_added;
