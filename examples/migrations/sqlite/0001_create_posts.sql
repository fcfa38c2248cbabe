CREATE TABLE posts (
    id TEXT PRIMARY KEY,
    author TEXT,
    text TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX posts_author_created ON posts (author, created_at);
