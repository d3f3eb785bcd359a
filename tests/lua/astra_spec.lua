-- lua/ferry/astra.lua: nodetool output, schema.cql, keys, times and credentials, as in
-- ../shared/reference/astra.md.
local astra = require "ferry.astra"

-- listsnapshots: Cassandra 4.0 (sizes with spaces), 4.1+ (creation/expiration), old title case.
local rows = astra.parse_listsnapshots([[
Snapshot Details:
Snapshot name Keyspace name   Column family name True size Size on disk
multi-table   cqlkeyspace     t2                 4.86 KiB  5.67 KiB
catalog-ks    catalogkeyspace journal            4.9 KiB   5.73 KiB

Total TrueDiskSpaceUsed: 44.02 KiB
]])
assert(#rows == 2 and rows[1].snapshot == "multi-table" and rows[1].table == "t2")
assert(rows[1].true_size == "4.86 KiB" and rows[2].size_on_disk == "5.73 KiB", rows[2].size_on_disk)
rows = astra.parse_listsnapshots([[
Snapshot Details:
Snapshot name   Keyspace name   Column family name True size Size on disk Creation time            Expiration time
catalog-journal catalogkeyspace journal            1.12 KiB  6.13 KiB     2024-01-25T09:45:31.820Z 2024-01-25T09:48:31.820Z
]])
assert(rows[1].created == "2024-01-25T09:45:31.820Z" and rows[1].expires == "2024-01-25T09:48:31.820Z")
assert(#astra.parse_listsnapshots("Snapshot Details: \nThere are no snapshots\n") == 0)
rows = astra.parse_listsnapshots([[
Snapshot Details:
Snapshot Name  Keyspace  Column Family  True Size  Size on Disk
1387304478196  Keyspace1 Standard1      0 bytes    308.66 MB
               Keyspace1 Counter3       0 bytes    0 bytes
]])
assert(#rows == 2 and rows[2].snapshot == "1387304478196" and rows[2].table == "Counter3")

assert(astra.nodetool_error("error: Snapshot s1 already exists.\n-- StackTrace --\njava.io.IOException: x\n\tat y\n")
  == "error: Snapshot s1 already exists.")

-- schema.cql
local s = astra.parse_schema([[
-- comment
CREATE TABLE IF NOT EXISTS smart_home.sensor_readings (
    device_id UUID, room_id UUID, reading_type TEXT, PRIMARY KEY ((device_id))
) WITH ID = 296a2d30-c22a-11e9-b135-0d927649052c;
CREATE INDEX IF NOT EXISTS roomidx ON smart_home.sensor_readings(room_id);
CREATE CUSTOM INDEX typeidx ON smart_home.sensor_readings (reading_type) USING 'StorageAttachedIndex';
]])
assert(#s.tables == 1 and s.tables[1]:find("sensor_readings"))
assert(#s.indexes == 2 and s.indexes[1].name == "roomidx" and not s.indexes[1].sai and s.indexes[2].sai)
local v = astra.parse_schema("CREATE MATERIALIZED VIEW IF NOT EXISTS ks.by_room AS SELECT * FROM ks.t WHERE room IS NOT NULL PRIMARY KEY (room, id);")
assert(#v.views == 1 and v.views[1].name == "ks.by_room" and #v.tables == 0)
assert(astra.parse_schema("CREATE TABLE ks.t (a int PRIMARY KEY) WITH compression = {'class': 'EncryptingSnappyCompressor'};").encrypted)

-- keys: no double slashes, node first
assert(astra.key("node1", "ks/t-abc/snapshots/s1/nb-1-big-Data.db") == "node1/ks/t-abc/snapshots/s1/nb-1-big-Data.db")
assert(astra.key("node1/", "/ks//t/x") == "node1/ks/t/x")

-- times
assert(astra.epoch("1970-01-02T00:00:00Z") == 86400)
assert(astra.epoch("2024-01-18T19:45:09Z") == 1705607109)
assert(astra.iso(1705607109) == "2024-01-18T19:45:09Z")
assert(astra.terminal("MigrationDone") and astra.terminal("ImportFailed") and not astra.terminal("ImportInProgress"))

-- credentials per cloud
local aws = astra.upload_store({status = "ReceivingFiles",
  uploadBucketDir = "s3://ds-mig-b7e7/272e/sstables/",
  uploadCredentials = {name = "sessionToken", keys = {accessKeyID = "AK", secretAccessKey = "SK", sessionToken = "ST"},
                       credentialExpiration = "2024-01-18T19:45:09Z"}}, {aws_region = "us-west-2"})
assert(aws.cloud == "aws" and aws.url == "s3://ds-mig-b7e7/272e/sstables" and aws.opts.session_token == "ST")
assert(aws.opts.region == "us-west-2")
local az = astra.upload_store({status = "ReceivingFiles",
  uploadBucketDir = "https://acct.blob.core.windows.net/mig-upload-456/sstables/",
  uploadCredentials = {name = "URL signature", keys = {url = "https://x/?si=tok&sig=abc", urlSignature = "si=tok&sig=abc"}}})
assert(az.cloud == "azure" and az.url == "https://acct.blob.core.windows.net/mig-upload-456/sstables?si=tok&sig=abc")
local sa = '{"type":"service_account","private_key":"PEM","client_email":"m@p.iam.gserviceaccount.com"}'
local function gcp_status(file)
  return {status = "ReceivingFiles", uploadBucketDir = "gs://ds-mig-x/y/sstables/",
    uploadCredentials = {name = "TYPE_GOOGLE_CREDENTIALS_FILE", keys = {file = file}}}
end
local gcp = astra.upload_store(gcp_status(ferry.base64.encode(sa)))
assert(gcp.cloud == "gcp" and gcp.opts.service_account_key == sa and gcp.opts.endpoint == nil)
local via = astra.upload_store(gcp_status(ferry.base64.encode(sa)), {gcs_endpoint = "http://127.0.0.1:1"})
assert(via.opts.endpoint == "http://127.0.0.1:1" and via.opts.allow_http == true)
-- not base64, or base64 of something that is not a service-account key: a clear refusal
for _, bad in ipairs({"%%%not base64", ferry.base64.encode('{"type":"service_account"}'), ""}) do
  local ok, err = pcall(astra.upload_store, gcp_status(bad))
  assert(not ok and tostring(err):find("keys.file"), tostring(err))
end
assert(not pcall(astra.upload_store, {status = "Initializing", uploadBucketDir = "", uploadCredentials = {keys = ferry.json.null}}))

print("astra ok")
