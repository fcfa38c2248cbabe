-- Posts, newest first by (created_at, id): the keyset of GET /api/posts.
CREATE TABLE posts (
    id          text    NOT NULL PRIMARY KEY,
    text        text    NOT NULL,
    author      text    NOT NULL DEFAULT '',
    source      text    NOT NULL DEFAULT '',
    created_at  bigint  NOT NULL,            -- Unix milliseconds, UTC
    language    text,
    likes       bigint,
    reposts     bigint,
    replies     bigint,
    views       bigint,
    ingested_at bigint  NOT NULL             -- Unix milliseconds, UTC
);
CREATE INDEX posts_created ON posts (created_at DESC, id DESC);
CREATE INDEX posts_author_created ON posts (author, created_at DESC, id DESC);

-- One alert per (post, entity): a relevant post raises one per entity it names.
CREATE TABLE alerts (
    id          bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    post_id     text    NOT NULL,
    entity      text    NOT NULL,
    confidence  float8  NOT NULL,            -- the relevance score / 100
    score       float8  NOT NULL,
    created_at  bigint  NOT NULL,            -- the post's time, Unix milliseconds
    raised_at   bigint  NOT NULL,
    text        text    NOT NULL,
    signals     text    NOT NULL,            -- JSON array of the score's signals
    UNIQUE (post_id, entity)
);
CREATE INDEX alerts_entity_created ON alerts (entity, created_at DESC, id DESC);
CREATE INDEX alerts_created ON alerts (created_at DESC, id DESC);
CREATE INDEX alerts_confidence_created ON alerts (confidence, created_at DESC);
