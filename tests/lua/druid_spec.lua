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

print("druid ok")
