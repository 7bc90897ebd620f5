DROP TRIGGER users_deleted ON users;
DROP TRIGGER users_access_changed ON users;
DROP TRIGGER sessions_deleted ON sessions;
DROP TRIGGER sessions_ended ON sessions;
DROP FUNCTION stockroom_sessions_changed();
