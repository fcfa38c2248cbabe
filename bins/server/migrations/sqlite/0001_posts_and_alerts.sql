-- Posts, newest first by (created_at, id): the keyset of GET /api/posts.
CREATE TABLE posts (
    id          TEXT    NOT NULL PRIMARY KEY,
    text        TEXT    NOT NULL,
    author      TEXT    NOT NULL DEFAULT '',
    source      TEXT    NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,            -- Unix milliseconds, UTC
    language    TEXT,
    likes       INTEGER,
    reposts     INTEGER,
    replies     INTEGER,
    views       INTEGER,
    ingested_at INTEGER NOT NULL             -- Unix milliseconds, UTC
) WITHOUT ROWID;
CREATE INDEX posts_created ON posts (created_at DESC, id DESC);
CREATE INDEX posts_author_created ON posts (author, created_at DESC, id DESC);

-- One alert per (post, entity): a relevant post raises one per entity it names.
CREATE TABLE alerts (
    id          INTEGER PRIMARY KEY,
    post_id     TEXT    NOT NULL,
    entity      TEXT    NOT NULL,
    confidence  REAL    NOT NULL,            -- the relevance score / 100
    score       REAL    NOT NULL,
    created_at  INTEGER NOT NULL,            -- the post's time, Unix milliseconds
    raised_at   INTEGER NOT NULL,
    text        TEXT    NOT NULL,
    signals     TEXT    NOT NULL,            -- JSON array of the score's signals
    UNIQUE (post_id, entity)
);
CREATE INDEX alerts_entity_created ON alerts (entity, created_at DESC, id DESC);
CREATE INDEX alerts_created ON alerts (created_at DESC, id DESC);
CREATE INDEX alerts_confidence_created ON alerts (confidence, created_at DESC);
