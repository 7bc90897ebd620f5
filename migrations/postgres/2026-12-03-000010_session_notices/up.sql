-- Every process remembers live login sessions in memory (src/auth/session_cache.rs). When
-- a session ends, or a user's role or erasure changes, these triggers tell every process
-- through NOTIFY, delivered when the transaction commits. Being triggers, no code path
-- (nor an operator's manual UPDATE) can end a session without the processes hearing of it.
CREATE FUNCTION stockroom_sessions_changed() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('stockroom_sessions', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER sessions_ended
    AFTER UPDATE OF revoked_at, expires_at, user_id ON sessions
    FOR EACH ROW
    WHEN (OLD.revoked_at IS DISTINCT FROM NEW.revoked_at
          OR OLD.expires_at IS DISTINCT FROM NEW.expires_at
          OR OLD.user_id IS DISTINCT FROM NEW.user_id)
    EXECUTE FUNCTION stockroom_sessions_changed();

CREATE TRIGGER sessions_deleted
    AFTER DELETE ON sessions
    FOR EACH STATEMENT
    EXECUTE FUNCTION stockroom_sessions_changed();

CREATE TRIGGER users_access_changed
    AFTER UPDATE OF role, deleted_at ON users
    FOR EACH ROW
    WHEN (OLD.role IS DISTINCT FROM NEW.role OR OLD.deleted_at IS DISTINCT FROM NEW.deleted_at)
    EXECUTE FUNCTION stockroom_sessions_changed();

CREATE TRIGGER users_deleted
    AFTER DELETE ON users
    FOR EACH STATEMENT
    EXECUTE FUNCTION stockroom_sessions_changed();
