-- lua/ferry/druid.lua: the layout and loadSpec rules of ../shared/reference/druid.md, including
-- the GCS and Azure shapes that no server here can exercise end to end.
local druid = require "ferry.druid"

-- connectURI -> SQL URL, with user and password percent-encoded.
assert(druid.sql_url("jdbc:mysql://db.example:3306/druid?useSSL=false", "dru id", "p@ss:w/rd")
  == "mysql://dru%20id:p%40ss%3Aw%2Frd@db.example:3306/druid")
assert(druid.sql_url("jdbc:postgresql://pg:5432/druid", "druid", nil) == "postgres://druid@pg:5432/druid")
local url, why = druid.sql_url("jdbc:derby://localhost:1527/var/druid/metadata.db;create=true")
assert(url == nil and why:find("mode=csv"))

-- Password providers.
assert(druid.password("plain", "x") == "plain")
assert(druid.password('{"type":"default","password":"pw"}', "x") == "pw")
local ok, err = pcall(druid.password, '{"type":"environment","variable":"FERRY_SPEC_UNSET_VAR"}', "conf")
assert(not ok and err.message:find("FERRY_SPEC_UNSET_VAR"))

-- Unique paths: the element before index.zip / index/ when it is a UUID (Java split semantics).
local uuid = "4d4c8a7e-2f0b-4b1e-9a55-0d1c2e3f4a5b"
assert(druid.unique_id("/s/ds/a_b/v/0/" .. uuid .. "/index.zip") == uuid)
assert(druid.unique_id("/s/ds/a_b/v/0/" .. uuid .. "/index/") == uuid)
assert(druid.unique_id("/s/ds/a_b/v/0/index.zip") == nil)

-- Storage dirs: default (colons kept) and Azure (basic dates, version colons to underscores).
local seg = druid.segment('{"dataSource":"wikipedia","interval":"2016-06-27T02:00:00.000Z/2016-06-27T03:00:00.000Z",' ..
  '"version":"2019-05-03T21:57:15.950Z","loadSpec":{"type":"local","path":"/x/index.zip"},' ..
  '"shardSpec":{"type":"numbered","partitionNum":1,"partitions":2},"size":1}', "id")
assert(druid.default_dir(seg) == "wikipedia/2016-06-27T02:00:00.000Z_2016-06-27T03:00:00.000Z/2019-05-03T21:57:15.950Z/1")
assert(druid.azure_dir(seg, uuid) ==
  "wikipedia/20160627T020000.000Z_20160627T030000.000Z/2019-05-03T21_57_15.950Z/1/" .. uuid)
local none = druid.segment('{"dataSource":"d","interval":"2020-01-01T00:00:00.000Z/2020-01-02T00:00:00.000Z",' ..
  '"version":"v","loadSpec":{"type":"local","path":"/p"},"shardSpec":{"type":"none"}}', "id2")
assert(none.partition == 0)

-- Targets and the loadSpec each pusher writes, in Druid's key order.
local s3 = druid.target("s3://migration/example")
assert(s3.kind == "s3" and s3.bucket == "migration" and s3.base == "example")
local key = druid.target_key(s3, seg)
assert(druid.load_spec(s3, key, {s3_schema = "s3n"}) ==
  '{"type":"s3_zip","bucket":"migration","key":"example/wikipedia/2016-06-27T02:00:00.000Z_2016-06-27T03:00:00.000Z/2019-05-03T21:57:15.950Z/1/index.zip","S3Schema":"s3n"}')
-- An empty baseKey is skipped, as S3Utils.constructSegmentPath does (no leading slash).
local bare = druid.target("s3://migration")
assert(druid.load_spec(bare, "d/x/index.zip", {s3_schema = "none"}) == '{"type":"s3_zip","bucket":"migration","key":"d/x/index.zip"}')
local gs = druid.target("gs://bucket/prefix/")
assert(gs.kind == "google" and gs.base == "prefix")
assert(druid.load_spec(gs, "d/x/index.zip") == '{"type":"google","bucket":"bucket","path":"prefix/d/x/index.zip"}')
local az = druid.target("https://acct.blob.core.windows.net/druid/deep?sv=2022&sig=abc")
assert(az.kind == "azure" and az.bucket == "druid" and az.base == "deep")
assert(druid.target_key(az, seg):find("20160627T020000.000Z", 1, true))
assert(druid.load_spec(az, "d/x/index.zip") == '{"type":"azure","containerName":"druid","blobPath":"deep/d/x/index.zip"}')
local dir = druid.target("file:///mnt/druid/")
assert(druid.load_spec(dir, "d/x/index.zip") == '{"type":"local","path":"/mnt/druid/d/x/index.zip"}')
assert(not pcall(druid.target, "hdfs://nn/druid"))
assert(not pcall(druid.target, "s3:/typo"))

-- Which specs already point into a target.
assert(druid.in_target(s3, {type = "s3_zip", bucket = "migration", key = "example/a/index.zip"}) == "a/index.zip")
assert(druid.in_target(s3, {type = "s3_zip", bucket = "other", key = "example/a/index.zip"}) == nil)
assert(druid.in_target(az, {type = "azure", containerName = "druid", blobPath = "deep/a/index.zip"}) == "a/index.zip")

-- The rewrite keeps every other byte (number forms, escapes, key order).
local payload = '{"dataSource":"d","loadSpec":{"type":"local","path":"/p/index/"},"dimensions":"a\\\\b,caf\\u00e9",' ..
  '"lastCompactionState":{"x":1.0E0},"size":12}'
assert(druid.rewrite(payload, '{"type":"google","bucket":"b","path":"k"}') ==
  '{"dataSource":"d","loadSpec":{"type":"google","bucket":"b","path":"k"},"dimensions":"a\\\\b,caf\\u00e9",' ..
  '"lastCompactionState":{"x":1.0E0},"size":12}')

-- CSV fields as the post-#19698 exporter writes them.
assert(druid.csv_line({"a", nil, "", " x", 'q"q'}, 5) == 'a,,""," x","q""q"\n')
assert(druid.canonical_columns({"payload", "id", "extra", "end"})[1] == "id")

-- The migration's working parts (moved out of scripts/druid-deep-storage.lua).
-- Table names: MySQL backquotes, PostgreSQL double quotes and the schema when it is not public.
local my, pg = {backend = "mysql"}, {backend = "postgres"}
assert(druid.quote_name(my, "druid_segments") == "`druid_segments`")
assert(druid.quote_name(pg, "druid_segments") == '"druid_segments"')
assert(druid.qualified_name(my, "public", "druid_segments") == "`druid_segments`")
assert(druid.qualified_name(pg, "public", "druid_segments") == "druid_segments")
assert(druid.qualified_name(pg, "druid", "druid_segments") == '"druid"."druid_segments"')
assert(druid.qualified_name(nil, "public", "druid_segments") == '"druid_segments"')
assert(druid.sql_string("it's") == "'it''s'" and druid.sql_string("") == "''")

-- Segment files read under local_root when the deep storage is mounted elsewhere.
assert(druid.source_path("/var/druid/segments/ds/x/index.zip", "/var/druid/segments", "/mnt/seg") == "/mnt/seg/ds/x/index.zip")
assert(druid.source_path("/var/druid/segments2/x/index.zip", "/var/druid/segments", "/mnt/seg") == "/var/druid/segments2/x/index.zip")
assert(druid.source_path("/var/druid/segments/x/index.zip", "/var/druid/segments", nil) == "/var/druid/segments/x/index.zip")
assert(druid.local_storage_dir(nil, "/data/seg///", nil) == "/data/seg")
assert(druid.local_storage_dir({storage_type = "local", storage_dir = "var/druid/segments", path = "/opt/druid/conf/druid/cluster/_common/common.runtime.properties"},
  nil, "/opt/druid") == "/opt/druid/var/druid/segments")
assert(druid.local_storage_dir(nil, nil, nil) == nil)

-- export-metadata -x writes payloads as hex of the JSON bytes ("{" is 7B).
assert(druid.is_hex_payload(ferry.hex.encode('{"a":1}')))
assert(druid.is_hex_payload("7b7d") and druid.is_hex_payload("7B7D"))
assert(not druid.is_hex_payload('{"a":1}') and not druid.is_hex_payload("7B7") and not druid.is_hex_payload("5B5D"))

-- Cells as export-metadata writes them, and the rows of the import files.
assert(druid.csv_value({used = true, partitioned = "false", id = "x"}, "used") == "1")
assert(druid.csv_value({used = true, partitioned = "false", id = "x"}, "partitioned") == "0")
assert(druid.csv_value({id = "x", payload = ferry.sql.null}, "payload") == nil and druid.csv_value({id = "x"}, "id") == "x")
local row = {cells = {id = "s1", payload = "old", used_status_last_updated = ferry.sql.null}}
local cells = druid.out_cells(row, "new", "2026-01-01T00:00:00.000Z")
assert(cells.payload == "new" and cells.id == "s1" and cells.used_status_last_updated == "2026-01-01T00:00:00.000Z")
assert(row.cells.payload == "old" and row.cells.used_status_last_updated == ferry.sql.null)
row.cells.used_status_last_updated = "2025-05-05T00:00:00.000Z"
assert(druid.out_cells(row, nil, "2026-01-01T00:00:00.000Z").used_status_last_updated == "2025-05-05T00:00:00.000Z")
assert(druid.out_cells(row, nil, "t").payload == "old")

-- Import columns: used_status_last_updated (NOT NULL since Druid 28) added after payload unless
-- the target table predates it; a column the target lacks would lose data.
local nine = {table.unpack(druid.COLUMNS, 1, 9)}
local ten = {table.unpack(druid.COLUMNS, 1, 10)}
local cols = druid.import_columns(nine, {target_columns = ten, segments_table = "druid_segments"})
assert(#cols == 10 and cols[10] == "used_status_last_updated" and cols[9] == "payload")
cols = druid.import_columns(nine, {target_columns = nine, segments_table = "druid_segments"})
assert(#cols == 9)
cols = druid.import_columns(nine, {segments_table = "druid_segments"}) -- target unknown
assert(#cols == 10 and cols[10] == "used_status_last_updated")
local ok2, err2 = pcall(druid.import_columns, ten, {target_columns = {"id", "dataSource"}, segments_table = "druid_segments"})
assert(not ok2 and err2.kind == "conflict" and err2.message:find("druid_segments", 1, true))

-- The plan: local rows grouped by file, tombstones and other deep storages left alone, rows
-- already in the target counted, data sources filtered.
local function payload(ds, spec, part)
  return ('{"dataSource":"%s","interval":"2020-01-01T00:00:00.000Z/2020-01-02T00:00:00.000Z","version":"v1",' ..
    '"loadSpec":%s,"shardSpec":{"type":"numbered","partitionNum":%d,"partitions":0}}'):format(ds, spec, part)
end
local function r(id, ds, spec, part) return {id = id, payload = payload(ds, spec, part or 0), cells = {used = 1}} end
local plan_rows = {
  r("a0", "a", '{"type":"local","path":"/seg/a/0/index.zip"}', 0),
  r("a1", "a", '{"type":"local","path":"/seg/a/1/index/"}', 1),
  r("t", "a", '{"type":"tombstone"}'),
  r("h", "a", '{"type":"hdfs","path":"hdfs://nn/x.zip"}'),
  r("in", "a", '{"type":"s3_zip","bucket":"migration","key":"example/a/x/index.zip"}'),
  r("b0", "b", '{"type":"local","path":"/seg/b/0/index.zip"}'),
}
local plan = druid.make_plan(plan_rows, s3, {wanted = {a = true}, s3_schema = "s3n",
  source_path = function(path) return "/mnt" .. path end})
assert(plan.local_rows == 2 and #plan.order == 2 and plan.tombstones == 1 and plan.elsewhere == 2)
assert(plan.already == 1 and plan.already_rows[1].key == "a/x/index.zip" and plan.filtered == 1)
assert(plan.by_type.hdfs == 1 and plan.by_type.s3_zip == 1)
local g0, g1 = plan.groups[plan.order[1]], plan.groups[plan.order[2]]
assert(g0.key == "a/2020-01-01T00:00:00.000Z_2020-01-02T00:00:00.000Z/v1/0/index.zip", g0.key)
assert(g0.src == "/mnt/seg/a/0/index.zip" and not g0.is_dir and g1.is_dir)
assert(g1.spec == '{"type":"s3_zip","bucket":"migration","key":"example/a/2020-01-01T00:00:00.000Z_2020-01-02T00:00:00.000Z/v1/1/index.zip","S3Schema":"s3n"}')
-- Two files that would land on one key: refused before anything is copied.
local ok3, err3 = pcall(druid.make_plan, {
  r("x", "a", '{"type":"local","path":"/seg/one/index.zip"}', 0),
  r("y", "a", '{"type":"local","path":"/seg/two/index.zip"}', 0)}, s3, {s3_schema = "s3n", source_path = function(x) return x end})
assert(not ok3 and err3.kind == "invalid_input" and err3.message:find("/seg/one/index.zip", 1, true), tostring(err3))

print("druid ok")
