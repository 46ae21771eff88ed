-- newsetl warehouse schema at version 2 (as the schema module then released it), for the upgrade test.
-- migration 1: contract tables
CREATE TABLE IF NOT EXISTS runs (
            run_id        VARCHAR PRIMARY KEY,
            flow_run_id   VARCHAR,
            started_at    TIMESTAMPTZ NOT NULL,
            finished_at   TIMESTAMPTZ,
            status        VARCHAR NOT NULL,      -- running | completed | failed
            params        JSON,
            counts        JSON,
            message       VARCHAR
        );
        CREATE TABLE IF NOT EXISTS documents (
            doc_id        VARCHAR PRIMARY KEY,
            source_uri    VARCHAR NOT NULL,
            kind          VARCHAR NOT NULL,
            content_type  VARCHAR,
            encoding      VARCHAR,
            raw           BLOB NOT NULL,         -- exact bytes as received
            bytes         BIGINT NOT NULL,
            external_id   VARCHAR,
            url           VARCHAR,
            fetched_at    TIMESTAMPTZ,
            first_run_id  VARCHAR NOT NULL
        );
        CREATE TABLE IF NOT EXISTS articles (
            article_id         VARCHAR PRIMARY KEY,
            doc_id             VARCHAR NOT NULL,
            source_uri         VARCHAR NOT NULL,
            external_id        VARCHAR,
            url                VARCHAR,
            publisher          VARCHAR,
            original_publisher VARCHAR,
            title              VARCHAR,
            subtitle           VARCHAR,
            byline             VARCHAR,
            published_at       TIMESTAMPTZ,
            fetched_at         TIMESTAMPTZ,
            language           VARCHAR,
            body               VARCHAR NOT NULL,
            word_count         INTEGER NOT NULL,
            content_type       VARCHAR,
            body_hash          VARCHAR NOT NULL,  -- sha256 of the normalized body: exact-dup tier
            repairs            JSON,              -- repair kind -> count
            extra              JSON,              -- unknown input fields, kept
            cluster_id         VARCHAR,
            is_canonical       BOOLEAN,
            run_id             VARCHAR NOT NULL
        );
        CREATE TABLE IF NOT EXISTS removals (
            article_id  VARCHAR NOT NULL,
            seq         INTEGER NOT NULL,         -- order of the removal within the article
            category    VARCHAR NOT NULL,
            rule        VARCHAR NOT NULL,
            text        VARCHAR NOT NULL,
            position    INTEGER NOT NULL,
            run_id      VARCHAR NOT NULL
        );
        CREATE TABLE IF NOT EXISTS quarantine (
            quarantine_id VARCHAR PRIMARY KEY,    -- sha256 of (source_uri, stage, reason, doc_id)
            source_uri    VARCHAR NOT NULL,
            doc_id        VARCHAR,
            run_id        VARCHAR NOT NULL,
            stage         VARCHAR NOT NULL,
            reason        VARCHAR NOT NULL,
            detail        VARCHAR NOT NULL,
            raw           BLOB,
            quarantined_at TIMESTAMPTZ NOT NULL
        );
        CREATE TABLE IF NOT EXISTS clusters (
            cluster_id           VARCHAR PRIMARY KEY,
            canonical_article_id VARCHAR NOT NULL,
            size                 INTEGER NOT NULL,
            updated_run_id       VARCHAR
        );
-- migration 2: inputs seen, for cheap drop-folder re-runs
-- One row per input file read completely: an unchanged file (same size and mtime) is not
        -- read again on the next run. Its documents are still counted as read and skipped.
        CREATE TABLE IF NOT EXISTS inputs (
            path         VARCHAR PRIMARY KEY,
            size         BIGINT NOT NULL,
            mtime_ns     BIGINT NOT NULL,
            documents    INTEGER NOT NULL,   -- documents and rejected records the file produced
            last_run_id  VARCHAR NOT NULL,
            recorded_at  TIMESTAMPTZ NOT NULL
        );
