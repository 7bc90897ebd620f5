-- Every message in a group adds to each member's open chat notification (its count and
-- preview): a 1,000-member group rewrites 1,000 rows per message. Measured on the benchmark
-- machine, that UPDATE took 46 ms a message and grew as dead row versions piled up in the
-- table's five indexes, which held sends to about 7 a second. None of the columns it changes
-- is indexed, so with room left on each page PostgreSQL keeps those updates HOT (no index
-- entries, old versions pruned in place), as `event_streams` already does; and vacuum runs
-- after every 5,000 dead versions rather than after 20 % of the table. Pages written before
-- this change fill as before until they are rewritten.
ALTER TABLE notifications SET (
    fillfactor = 50,
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 5000,
    autovacuum_vacuum_cost_delay = 0
);
