-- Benchmark driver for sharded copies (bench/scale-out/run.sh runs it; not a migration procedure).
-- One sharded step: ferry.store.copy from `src` to `dst` on an S3 server, taking this process's
-- share (--shard I/N); prints the report as ONE JSON line on stdout.

local p = ferry.params{
  {name = "src", type = "string", required = true, doc = "source store URL (s3://bucket)"},
  {name = "dst", type = "string", required = true, doc = "destination store URL (s3://bucket)"},
  {name = "endpoint", type = "string", required = true, doc = "S3 endpoint (http://127.0.0.1:PORT)"},
  {name = "access_key", type = "string", required = true, doc = "S3 access key"},
  {name = "secret_key", type = "string", required = true, doc = "S3 secret key"},
  {name = "concurrency", type = "integer", default = 16, doc = "objects copied at once by this process"},
}

local function open(u)
  return ferry.store.open(u, {region = "us-east-1", endpoint = p.endpoint, allow_http = true,
    access_key_id = p.access_key, secret_access_key = p.secret_key})
end

local src, dst = open(p.src), open(p.dst)
local r = ferry.step("copy", "Copy this shard's objects", function()
  local r = ferry.store.copy(src, dst, {concurrency = p.concurrency, compare = "size"})
  return {copied = r.copied, skipped = r.skipped, failed = r.failed, bytes = r.bytes,
          other_shards = r.other_shards, seconds = r.seconds}
end, {sharded = true})
print(ferry.json.encode(r))
