-- A version 2 store (schema of Shulian up to 7c94dad), written by that version's node.store and
-- dumped with sqlite3's iterdump: tests/node/test_store_migrate.py upgrades it to the current schema.
BEGIN TRANSACTION;
CREATE TABLE access_requests (
    id         TEXT PRIMARY KEY,
    consumer   TEXT NOT NULL,
    dataset    TEXT NOT NULL,
    purpose    TEXT NOT NULL,
    scenario   TEXT NOT NULL,
    items      TEXT NOT NULL,
    until      TEXT,
    status     TEXT NOT NULL,
    reason     TEXT NOT NULL DEFAULT '',
    filed_at   TEXT NOT NULL,
    deadline   TEXT,
    decided_at TEXT,
    decided_by TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
CREATE TABLE changes (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset   TEXT NOT NULL,
    record_id TEXT NOT NULL,
    version   INTEGER NOT NULL,
    op        TEXT NOT NULL,
    at_us     INTEGER NOT NULL
);
INSERT INTO "changes" VALUES(1,'population','p0',1,'upsert',1700000000003000);
INSERT INTO "changes" VALUES(2,'population','p1',1,'upsert',1700000000003000);
INSERT INTO "changes" VALUES(3,'population','p2',1,'upsert',1700000000003000);
INSERT INTO "changes" VALUES(4,'population','p3',1,'upsert',1700000000003000);
INSERT INTO "changes" VALUES(5,'population','p4',1,'upsert',1700000000003000);
INSERT INTO "changes" VALUES(6,'inbox','q0',1,'upsert',1700000000004000);
INSERT INTO "changes" VALUES(7,'inbox','q1',1,'upsert',1700000000004000);
INSERT INTO "changes" VALUES(8,'inbox','q2',1,'upsert',1700000000004000);
INSERT INTO "changes" VALUES(9,'population','p1',2,'upsert',1700000000005000);
INSERT INTO "changes" VALUES(10,'population','p9',1,'upsert',1700000000005000);
INSERT INTO "changes" VALUES(11,'population','p2',2,'delete',1700000000006000);
INSERT INTO "changes" VALUES(12,'population','p2',3,'upsert',1700000000008000);
INSERT INTO "changes" VALUES(13,'population','p3',2,'delete',1700000000009000);
CREATE TABLE datasets (
    id          TEXT PRIMARY KEY,
    record_type TEXT,
    publish     INTEGER NOT NULL DEFAULT 0,
    metadata    TEXT NOT NULL DEFAULT '{}',
    created_us  INTEGER NOT NULL,
    updated_us  INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO "datasets" VALUES('empty',NULL,0,'{}',1700000000002000,1700000000002000);
INSERT INTO "datasets" VALUES('inbox','Person',0,'{}',1700000000001000,1700000000001000);
INSERT INTO "datasets" VALUES('population','Person',1,'{"title":"户籍人口"}',1700000000000000,1700000000000000);
CREATE TABLE evidence (
    seq       INTEGER PRIMARY KEY,
    time      TEXT NOT NULL,
    kind      TEXT NOT NULL,
    actor     TEXT NOT NULL,
    details   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL,
    key_id    TEXT NOT NULL,
    signature TEXT NOT NULL
);
CREATE TABLE history (
    dataset     TEXT NOT NULL,
    id          TEXT NOT NULL,
    version     INTEGER NOT NULL,
    hash        BLOB NOT NULL,
    body        TEXT,
    deleted     INTEGER NOT NULL,
    modified_us INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    checked     TEXT,
    PRIMARY KEY (dataset, id, version)
) WITHOUT ROWID;
INSERT INTO "history" VALUES('population','p1',1,X'0A9C68A34711346BD9675A8AD7B91643','{"id":"p1","n":1,"name":"张1"}',0,1700000000003000,2,'fp1');
INSERT INTO "history" VALUES('population','p2',1,X'3A627202635B69769CA1430B91A3DBD6','{"id":"p2","n":2,"name":"张2"}',0,1700000000003000,3,'fp1');
INSERT INTO "history" VALUES('population','p2',2,X'',NULL,1,1700000000006000,11,NULL);
INSERT INTO "history" VALUES('population','p3',1,X'F37EBCCBDE92BF39443E7F7955D004D5','{"id":"p3","n":3,"name":"张3"}',0,1700000000003000,4,'fp1');
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO "meta" VALUES('schema_version','2');
CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset    TEXT NOT NULL,
    record_id  TEXT NOT NULL,
    version    INTEGER NOT NULL,
    op         TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    created_us INTEGER NOT NULL
);
INSERT INTO "outbox" VALUES(3,'population','p2',1,'upsert',3,1700000000003000);
INSERT INTO "outbox" VALUES(4,'population','p3',1,'upsert',4,1700000000003000);
INSERT INTO "outbox" VALUES(5,'population','p4',1,'upsert',5,1700000000003000);
INSERT INTO "outbox" VALUES(6,'population','p1',2,'upsert',9,1700000000005000);
INSERT INTO "outbox" VALUES(7,'population','p9',1,'upsert',10,1700000000005000);
INSERT INTO "outbox" VALUES(8,'population','p2',2,'delete',11,1700000000006000);
INSERT INTO "outbox" VALUES(9,'population','p2',3,'upsert',12,1700000000008000);
INSERT INTO "outbox" VALUES(10,'population','p3',2,'delete',13,1700000000009000);
CREATE TABLE policy_state (
    namespace  TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;
CREATE TABLE quarantine (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at  TEXT NOT NULL,
    topic        TEXT NOT NULL,
    partition    INTEGER NOT NULL,
    kafka_offset INTEGER NOT NULL,
    headers      TEXT NOT NULL,
    value        BLOB,
    reason       TEXT NOT NULL,
    status       TEXT NOT NULL,
    UNIQUE (topic, partition, kafka_offset)
);
CREATE TABLE records (
    dataset     TEXT NOT NULL,
    id          TEXT NOT NULL,
    version     INTEGER NOT NULL,
    hash        BLOB NOT NULL,
    body        TEXT,
    deleted     INTEGER NOT NULL DEFAULT 0,
    modified_us INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    checked     TEXT,
    PRIMARY KEY (dataset, id)
) WITHOUT ROWID;
INSERT INTO "records" VALUES('inbox','q0',1,X'8716F934EDACA054B4241C8984AE2468','{"id":"q0","name":"李0"}',0,1700000000004000,6,'fp2');
INSERT INTO "records" VALUES('inbox','q1',1,X'1C15370D1E49EF6EF4285FFFAA2B4837','{"id":"q1","name":"李1"}',0,1700000000004000,7,NULL);
INSERT INTO "records" VALUES('inbox','q2',1,X'0224D8E4DCB6409435DD1CBA5B430EE4','{"id":"q2","name":"李2"}',0,1700000000004000,8,NULL);
INSERT INTO "records" VALUES('population','p0',1,X'6F584C9E6907C13C28DFD941C0539749','{"id":"p0","n":0,"name":"张0"}',0,1700000000003000,1,'fp1');
INSERT INTO "records" VALUES('population','p1',2,X'B085B1432F68AD1F1EEE10B69FDB52C5','{"id":"p1","name":"张一改"}',0,1700000000005000,9,'fp2');
INSERT INTO "records" VALUES('population','p2',3,X'8F2BB1B0C980CC2AE47485DD38930B1D','{"id":"p2","name":"复活"}',0,1700000000008000,12,NULL);
INSERT INTO "records" VALUES('population','p3',2,X'',NULL,1,1700000000009000,13,NULL);
INSERT INTO "records" VALUES('population','p4',1,X'53FD364B35A58B853969D5F35AF37D19','{"id":"p4","n":4,"name":"张4"}',0,1700000000003000,5,'fp1');
INSERT INTO "records" VALUES('population','p9',1,X'21501CBA9B842670F71234BEB0685740','{"id":"p9","name":"新"}',0,1700000000005000,10,'fp2');
CREATE INDEX records_by_modified ON records (dataset, modified_us, id);
CREATE INDEX changes_by_dataset ON changes (dataset, seq);
CREATE INDEX access_requests_by_status ON access_requests (status, filed_at);
CREATE INDEX access_requests_by_pair ON access_requests (consumer, dataset);
CREATE INDEX quarantine_by_status ON quarantine (status, id);
DELETE FROM "sqlite_sequence";
INSERT INTO "sqlite_sequence" VALUES('changes',13);
INSERT INTO "sqlite_sequence" VALUES('outbox',10);
COMMIT;
