-- Text keys compared byte by byte (the "C" collation): ids, authors and
-- entities are matched for equality and paged in a stable order, never
-- sorted for people, and comparing them under the database's locale made
-- every index insert of an ingest several times dearer (strcoll per compare).
ALTER TABLE posts
    ALTER COLUMN id TYPE text COLLATE "C",
    ALTER COLUMN author TYPE text COLLATE "C";
ALTER TABLE alerts
    ALTER COLUMN post_id TYPE text COLLATE "C",
    ALTER COLUMN entity TYPE text COLLATE "C";

-- No query reads alerts by confidence first: GET /api/alerts pages newest
-- first through alerts_entity_created or alerts_created and filters
-- min_confidence on the way. The index only cost every insert.
DROP INDEX alerts_confidence_created;
