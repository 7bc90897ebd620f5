DROP TRIGGER batches_removed;
DROP TRIGGER batches_shown_changed;
DROP TRIGGER batches_added;
DROP TRIGGER items_removed;
DROP TRIGGER items_shown_changed;
