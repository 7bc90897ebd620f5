DROP TABLE stock_movements;
DROP TABLE batches;
DROP TABLE items;
