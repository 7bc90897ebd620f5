DROP TABLE replenishment_requests;
DROP TABLE holdings;
