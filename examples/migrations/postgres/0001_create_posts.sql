CREATE TABLE posts (
    id text PRIMARY KEY,
    author text,
    text text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX posts_author_created ON posts (author, created_at);
