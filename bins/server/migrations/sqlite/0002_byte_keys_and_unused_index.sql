-- SQLite compares text byte by byte already (BINARY); this migration only
-- drops the index no query uses, as the PostgreSQL one does: GET
-- /api/alerts pages newest first through alerts_entity_created or
-- alerts_created and filters min_confidence on the way.
DROP INDEX alerts_confidence_created;
