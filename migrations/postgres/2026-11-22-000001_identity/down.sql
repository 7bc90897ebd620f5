DROP TABLE refresh_tokens;
DROP TABLE sessions;
DROP TABLE files;
DROP TABLE users;
DROP TABLE file_blobs;
DROP FUNCTION date_add_days(date, integer);
