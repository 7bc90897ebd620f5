DROP INDEX items_photo;
DROP INDEX users_avatar;
DROP TABLE file_thumbnails;
