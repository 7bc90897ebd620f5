DROP TABLE user_events;
DROP TABLE events;
DROP TABLE event_streams;
DROP TABLE messages;
DROP TABLE chat_members;
DROP TABLE chats;
