-- Seafile storage backends as ferry stores: seafile.conf parsing, the backend -> store mapping,
-- migrate.py's object-name filter, and content checks for verification.
-- Behaviour follows haiwen/seafobj (seafobj/objstore_factory.py, objwrapper/s3.py,
-- objwrapper/alioss.py, seafobj/backends/*.py) as cited beside each rule.
local M = {}

-- Object types in migrate.py's order, with their seafile.conf sections.
M.TYPES = {"commits", "fs", "blocks"}
M.SECTIONS = {commits = "commit_object_backend", fs = "fs_object_backend", blocks = "block_backend"}

-- seafile.conf as Python's configparser reads it (seafobj's objstore_factory.py
-- SeafileConfig.get_config_parser: a plain configparser.ConfigParser()): option names are
-- lower-cased (optionxform), [DEFAULT] options show in every section, values are interpolated
-- (BasicInterpolation: %(name)s, %% for a percent sign) and booleans go through getboolean.
local BOOLEANS = {["1"] = true, yes = true, ["true"] = true, on = true,
                  ["0"] = false, no = false, ["false"] = false, off = false}

local function interpolate(sec, value, where, depth)
  if not value:find("%", 1, true) then return value end
  if depth > 10 then
    ferry.fail("invalid_input", where .. ": interpolation too deep (configparser's MAX_INTERPOLATION_DEPTH)")
  end
  local out, i = {}, 1
  while i <= #value do
    local c = value:sub(i, i)
    if c ~= "%" then
      out[#out + 1] = c
      i = i + 1
    elseif value:sub(i + 1, i + 1) == "%" then
      out[#out + 1] = "%"
      i = i + 2
    else
      local name, stop = value:match("^%%%(([^)]*)%)s()", i)
      if not name then
        ferry.fail("invalid_input", ("%s: '%%' must be followed by '%%' or '(name)s' (configparser raises " ..
          "InterpolationSyntaxError, so Seafile cannot read this value either); write %%%% for a percent sign"):format(where))
      end
      local v = sec[name:lower()]
      if v == nil then
        ferry.fail("invalid_input", ("%s: %%(%s)s names no option of the section or of [DEFAULT]"):format(where, name))
      end
      out[#out + 1] = interpolate(sec, v, where, depth + 1)
      i = stop
    end
  end
  return table.concat(out)
end

--- Sections as configparser presents them: {section = {lower-case option = interpolated value}}.
function M.configparser(ordered, path)
  local defaults = {}
  for _, s in ipairs(ordered) do
    if s.name == "DEFAULT" then
      for _, kv in ipairs(s.entries) do defaults[kv[1]:lower()] = kv[2] end
    end
  end
  local raw = {}
  for _, s in ipairs(ordered) do
    if s.name ~= "DEFAULT" and s.name ~= "" then
      local sec = raw[s.name] or {}
      for k, v in pairs(defaults) do if sec[k] == nil then sec[k] = v end end
      local seen = {}
      for _, kv in ipairs(s.entries) do
        local key = kv[1]:lower()
        if seen[key] then
          ferry.fail("invalid_input", ("[%s] of %s sets option '%s' twice (as '%s' and '%s'); configparser refuses " ..
            "that (DuplicateOptionError: option names are case-insensitive)"):format(s.name, path, key, seen[key], kv[1]))
        end
        seen[key] = kv[1]
        sec[key] = kv[2]
      end
      raw[s.name] = sec
    elseif s.name == "" and #s.entries > 0 then
      ferry.fail("invalid_input", path .. ": options before the first [section] (configparser: MissingSectionHeaderError)")
    end
  end
  -- Interpolated like configparser's get() in the sections seafobj reads; other sections
  -- ([database], [memcached], ...) are read by seaf-server's GKeyFile, which has no
  -- interpolation, so a '%' there is fine and kept as it is.
  local read_by_seafobj = {storage = true, store_crypt = true}
  for _, section in pairs(M.SECTIONS) do read_by_seafobj[section] = true end
  local conf = {}
  for name, sec in pairs(raw) do
    local out = {}
    for k, v in pairs(sec) do
      out[k] = read_by_seafobj[name] and interpolate(sec, v, ("[%s] %s of %s"):format(name, k, path), 1) or v
    end
    conf[name] = out
  end
  return conf
end

--- configparser's getboolean: 1/yes/true/on and 0/no/false/off in any case; anything else
--- is an error (seafobj would stop with ValueError too).
function M.boolean(sec, key, default, where)
  local v = sec[key]
  if v == nil then return default end
  local b = BOOLEANS[v:lower()]
  if b == nil then
    ferry.fail("invalid_input", ("%s: %s = %s is not a boolean as configparser reads it " ..
      "(1/yes/true/on or 0/no/false/off); Seafile would refuse it too"):format(where, key, v))
  end
  return b
end

--- Reads seafile.conf from a file path or the folder holding it; returns (sections, ordered, path).
function M.read_conf(path)
  local st = ferry.fs.stat(path)
  if st and st.is_dir then
    path = path .. "/seafile.conf"
  end
  if not ferry.fs.exists(path) then
    ferry.fail("not_found", "no seafile.conf at " .. path, {path = path})
  end
  local ok, ordered = pcall(ferry.ini.decode_ordered, ferry.fs.read(path), {strict = true})
  if not ok then
    local msg = tostring(ordered):gsub("^%[[%w_]+%] ", ""):gsub("^ferry%.ini%.decode_ordered: ", "")
    ferry.fail("invalid_input", ("%s: %s"):format(path, msg),
      {hint = "Seafile reads seafile.conf with Python's configparser, which refuses this too"})
  end
  return M.configparser(ordered, path), ordered, path
end

local function reject(msg, hint)
  ferry.fail("invalid_input", msg .. (hint and (" -- " .. hint) or ""))
end

--- `[storage] enable_storage_classes = true` makes seafobj load the storage-classes JSON and
--- ignore the three backend sections (objstore_factory.py SeafileConfig.init_backend_conf:
--- `get('storage', 'enable_storage_classes').lower() == 'true'`, then
--- load_multiple_backend_conf). Any configparser-true value is refused, since Seafile Pro's
--- server may read it as a boolean.
function M.refuse_storage_classes(conf, path)
  local v = (conf.storage or {}).enable_storage_classes
  if v and (BOOLEANS[v:lower()] == true) then
    reject(("%s sets [storage] enable_storage_classes = %s: Seafile then keeps libraries in the storage classes of %s " ..
      "and ignores the [commit_object_backend], [fs_object_backend] and [block_backend] sections this migration reads"):format(
        path, v, (conf.storage or {}).storage_classes_file or "storage_classes_file"),
      "move libraries between storage classes with migrate-repo.sh <repo_id> <orig_storage_id> <dest_storage_id>, " ..
      "or migrate one class by writing its backends as the three sections of a seafile.conf without [storage]")
  end
end

--- The region ferry signs with for an S3 section with `host`: seafobj passes no region_name to
--- boto3 then (objwrapper/s3.py SeafS3Client.do_connect, `else` branch), so boto3 signs with
--- its default: AWS_DEFAULT_REGION, else us-east-1. sign_region = "aws_region" uses the section's
--- aws_region instead; any other value is used as the region.
local function host_region(sec, where, sign_region)
  if sign_region == nil or sign_region == "seafobj" then
    local env = os.getenv("AWS_DEFAULT_REGION")
    return (env and env ~= "") and env or "us-east-1"
  elseif sign_region == "aws_region" then
    if not sec.aws_region then reject(where .. ": sign_region=aws_region but the section has no aws_region") end
    return sec.aws_region
  end
  return sign_region
end

--- OSS region id (e.g. cn-hangzhou) from an endpoint host: the label holding `oss-<region>`
--- (oss-cn-hangzhou.aliyuncs.com, oss-cn-beijing-internal.aliyuncs.com,
--- vpc100-oss-cn-beijing.aliyuncs.com, s3.oss-cn-hangzhou.aliyuncs.com). OSS's S3 API signs
--- SigV4 with that region id (Alibaba Cloud, "Use AWS SDKs to access OSS").
function M.oss_region(host)
  local name = host:gsub(":%d+$", "")
  for label in name:gmatch("[^.]+") do
    local r = label:match("oss%-(.+)$")
    if r and r ~= "accelerate" and r ~= "accelerate-overseas" then
      return (r:gsub("%-internal$", ""))
    end
  end
  return nil
end

--- The store behind one object type of a configuration: {name, url, opts, shown, container}.
--- role is "source" or "destination"; seafile_data is the default fs root; settings holds
--- sign_region and fsync (procedure parameters). `container` is what migrate.py's
--- identical-storage check compares (get_name() and get_container_name() of seafobj's backends).
function M.backend(conf, dtype, seafile_data, role, conf_path, settings)
  settings = settings or {}
  local section = M.SECTIONS[dtype]
  local sec = conf[section] or {}
  local name = sec.name or "fs"
  local where = ("[%s] of %s"):format(section, conf_path)
  if conf.store_crypt then
    reject(("%s enables storage encryption ([store_crypt])"):format(conf_path),
      "ferry copies objects byte for byte and cannot decrypt them; migrate.py --decrypt is the tool for encrypted storage")
  end
  if name == "fs" then
    local root = sec.dir or seafile_data
    if not root or root == "" then
      reject(where .. ": a filesystem backend needs `dir` or the seafile_data parameter")
    end
    root = ferry.fs.absolute(root)
    local opts = {layout = "seafile-fs", create = role == "destination"}
    if role == "destination" then
      -- seaf-server's save_obj_contents (common/obj-backend-fs.c): g_mkstemp (0600), fsync,
      -- rename_and_sync (rename, fsync of the folder).
      opts.file_mode = "0600"
      opts.fsync = settings.fsync ~= false
    end
    local dir = root .. "/storage/" .. dtype
    return {name = "fs", url = "file://" .. dir, opts = opts, shown = dir,
            container = "filesystem|" .. dir}
  elseif name == "s3" then
    if not sec.bucket then reject(where .. ": name = s3 needs a bucket") end
    if not sec.host and not sec.aws_region then
      reject(where .. ": an S3 backend needs `host` (S3-compatible server) or `aws_region` (AWS)",
        "seafobj 11+ refuses such a section too; add aws_region = <region> or host = <host:port>")
    end
    local https = M.boolean(sec, "use_https", false, where)
    local path_style = M.boolean(sec, "path_style_request", false, where)
    local v4 = M.boolean(sec, "use_v4_signature", false, where)
    local opts = {}
    if sec.key_id then opts.access_key_id = sec.key_id end
    if sec.key then opts.secret_access_key = sec.key end
    local domain
    if sec.host then
      -- objstore_factory.py get_s3_conf: host split on ':' into host and an integer port.
      local h, port = sec.host:match("^([^:]*):?(.*)$")
      if h == "" or (port ~= "" and not port:match("^%d+$")) then
        reject(("%s: host = %s is not host[:port]"):format(where, sec.host),
          "seafobj splits it on ':' and reads an integer port; write the scheme with use_https, not in host")
      end
      domain = h
      opts.endpoint = (https and "https://" or "http://") .. sec.host
      opts.allow_http = not https
      -- boto3 addressing_style = 'virtual' unless path_style_request (SeafS3Client.do_connect).
      opts.virtual_hosted_style = not path_style
      opts.region = host_region(sec, where, settings.sign_region)
      if sec.aws_region and opts.region ~= sec.aws_region then
        ferry.log.info(("%s: signing for %s with region %s, as seafobj does (it ignores aws_region = %s when host is set); " ..
          "-p sign_region=aws_region signs with aws_region"):format(where, sec.host, opts.region, sec.aws_region))
      end
    else
      opts.region = sec.aws_region
      domain = "s3." .. sec.aws_region .. ".amazonaws.com"
    end
    if sec.sse_c_key then opts.sse_c_key = sec.sse_c_key end
    if not v4 then
      ferry.log.warn(where .. ": use_v4_signature is not true; ferry always signs with V4 (Seafile 11+ needs V4 for migration too)")
    end
    -- seafobj/backends/s3.py get_container_name: domain (host without port) + "/" + bucket.
    return {name = "s3", url = "s3://" .. sec.bucket, opts = opts,
            shown = (sec.host or domain) .. "/" .. sec.bucket,
            container = "S3|" .. domain .. "/" .. sec.bucket}
  elseif name == "oss" then
    if not sec.bucket then reject(where .. ": name = oss needs a bucket") end
    if (sec.endpoint or "") == "" and not sec.region then
      reject(where .. ": an OSS backend needs `endpoint` or `region`")
    end
    -- objwrapper/alioss.py OSSConf: endpoint, else oss-cn-<region>-internal.aliyuncs.com.
    local host = (sec.endpoint or "") ~= "" and sec.endpoint or ("oss-cn-" .. sec.region .. "-internal.aliyuncs.com")
    local https = M.boolean(sec, "use_https", false, where)
    local region = settings.sign_region and settings.sign_region ~= "seafobj" and settings.sign_region
      or M.oss_region(host) or (sec.region and ("cn-" .. sec.region))
    if not region then
      reject(("%s: cannot tell the OSS region from endpoint %s"):format(where, host),
        "pass -p sign_region=<region id, e.g. cn-hangzhou>")
    end
    -- OSS serves only virtual-hosted requests (<bucket>.<endpoint>); ferry uses its S3 API.
    return {name = "oss", url = "s3://" .. sec.bucket,
            opts = {endpoint = (https and "https://" or "http://") .. host, allow_http = not https,
                    virtual_hosted_style = true, region = region,
                    access_key_id = sec.key_id, secret_access_key = sec.key},
            shown = host .. "/" .. sec.bucket,
            -- seafobj/backends/alioss.py get_container_name: the bucket name only.
            container = "OSS|" .. sec.bucket}
  elseif name == "ceph" then
    reject(where .. ": Ceph RADOS (name = ceph) is reached through librados, which ferry does not speak",
      "put the Ceph Object Gateway (RGW) in front of the pool and describe it as name = s3 with host = <rgw host:port>, or use migrate.sh for this pool")
  elseif name == "swift" then
    if role == "destination" then
      reject(where .. ": Swift cannot be a destination",
        "seafobj has no Swift writer, so Seafile's own migrate.py fails every object too; choose s3, oss or fs")
    end
    reject(where .. ": ferry does not speak Swift's native API",
      "enable Swift's S3 API (the s3api middleware) and describe the container as name = s3 with host = <proxy>")
  end
  reject(where .. ": unknown backend name '" .. tostring(name) .. "'", "Seafile knows fs, s3, ceph, swift and oss")
end

--- migrate.py's object-name filter (invalid_obj): `repo_id/obj_id` with a UUID-like repo id
--- (32 hex digits, hyphens allowed) and a 40-character lower-case hex object id. Temporary
--- files (`<38hex>.XXXXXX`, `tmpXXXX`) fail it and are left alone.
function M.valid_key(key)
  local repo, obj = key:match("^([^/]+)/([^/]+)$")
  if not repo then return nil end
  local hex = repo:gsub("[{}%-]", "")
  if #hex ~= 32 or hex:find("[^%x]") then return nil end
  if #obj ~= 40 or obj:find("[^0-9a-f]") then return nil end
  return key
end

--- Refuses source listings that cannot describe a Seafile storage (`counts`: valid source
--- objects per migrated type). Every library has commits (its head commit at least), fs
--- objects are only written for a library's files and folders, blocks only for the files an fs
--- object lists (seafile-server common/fs-mgr.c, commit-mgr.c); an empty library has one commit
--- and nothing else. So: fs objects or blocks without commits, or blocks without fs objects, mean
--- a listing that missed objects (a wrong bucket endpoint, prefix or credentials scoped too
--- narrowly); nothing at all means nothing to migrate, which is refused unless allow_empty.
function M.check_source(counts, types, repo, source_shown, allow_empty)
  local has = {}
  for _, t in ipairs(types) do has[t] = counts[t] end
  local function listed(t) return has[t] ~= nil end
  local function shown(t) return source_shown[t] or t end
  local problems = {}
  if listed("commits") and has.commits == 0 then
    for _, t in ipairs({"fs", "blocks"}) do
      if listed(t) and has[t] > 0 then
        problems[#problems + 1] = ("%d %s objects but no commit at %s"):format(has[t], t, shown("commits"))
      end
    end
  end
  if listed("fs") and has.fs == 0 and listed("blocks") and has.blocks > 0 then
    problems[#problems + 1] = ("%d blocks but no fs object at %s"):format(has.blocks, shown("fs"))
  end
  if #problems > 0 then
    ferry.fail("conflict", "the source listing cannot be Seafile's storage: " .. table.concat(problems, "; ") ..
      ". Every block belongs to a file (an fs object) and every fs object to a library, which has commits; " ..
      "check the section's bucket, host and path_style_request, and that the listed prefix is right")
  end
  local total = 0
  for _, t in ipairs(types) do total = total + has[t] end
  if total == 0 and not allow_empty then
    local where = {}
    for _, t in ipairs(types) do where[#where + 1] = shown(t) end
    ferry.fail("conflict", ("the source lists no %sobject at all (%s)"):format(
        repo and ("object of library " .. repo .. ", no ") or "", table.concat(where, ", ")),
      {hint = (repo and "check the repo id and that this library is stored in this backend; " or
        "check the backend sections (bucket, host, path_style_request, dir); ") ..
        "if the source really is empty, pass -p allow_empty=true"})
  end
end

--- Checks an object's content against its id: blocks are SHA-1 of their bytes, fs objects SHA-1
--- of their inflated bytes; commits are JSON (their id covers selected fields only).
function M.check_content(dtype, key, data)
  local id = key:match("/(%x+)$")
  if dtype == "blocks" then
    return ferry.digest.sha1(data) == id
  elseif dtype == "fs" then
    local ok, plain = pcall(ferry.zlib.decompress, data)
    return ok and ferry.digest.sha1(plain) == id
  else
    return (pcall(ferry.json.decode, data))
  end
end

--- seafile.conf with the backend sections of `dest` for `types` (default: all three) and every
--- other section of `orig`, in the original order (backend sections missing from the original
--- are appended).
function M.merge_conf(orig_ordered, dest_ordered, types)
  local backend = {}
  for _, s in ipairs(dest_ordered) do
    for _, dtype in ipairs(types or M.TYPES) do
      if s.name == M.SECTIONS[dtype] then backend[s.name] = s end
    end
  end
  local out, used = {}, {}
  for _, s in ipairs(orig_ordered) do
    if backend[s.name] then
      out[#out + 1] = backend[s.name]
      used[s.name] = true
    else
      -- Not replaced by the new configuration: kept as it was.
      out[#out + 1] = s
    end
  end
  for _, dtype in ipairs(M.TYPES) do
    local section = M.SECTIONS[dtype]
    if backend[section] and not used[section] then out[#out + 1] = backend[section] end
  end
  return out
end

return M
