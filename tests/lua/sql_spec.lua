-- The SQL suite, run against MariaDB and PostgreSQL: types, parameters, transactions, errors,
-- streaming, and copy_table in every conflict mode, within and across servers.
local p = ferry.params{
  {name = "url", type = "string", required = true, secret = true, doc = "database under test (empty)"},
  {name = "other", type = "string", required = true, secret = true, doc = "a second database (any server) for cross copies"},
}
local db = ferry.sql.connect(p.url)
local other = ferry.sql.connect(p.other)
local my = db.backend == "mysql"
local null = ferry.sql.null

local function blob_type(d) return d.backend == "mysql" and "LONGBLOB" or "BYTEA" end
local function ts_type(d) return d.backend == "mysql" and "DATETIME(6)" or "TIMESTAMP" end

db:exec("DROP TABLE IF EXISTS types")
db:exec(([[CREATE TABLE types (id BIGINT PRIMARY KEY, small INT, price DECIMAL(20,4), name VARCHAR(64),
  data %s, ts %s, day DATE, note TEXT)]]):format(blob_type(db), ts_type(db)))

-- Every byte value, and 64-bit extremes, survive a round trip.
local bytes = {}
for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
local all = table.concat(bytes)
local big, small = math.maxinteger, math.mininteger
db:exec("INSERT INTO types VALUES (?, ?, ?, ?, ?, ?, ?, ?)", {big, 7, "12345678.9012", "max", all, "2024-02-29T13:14:15.123456", "2024-02-29", null})
db:exec("INSERT INTO types VALUES (?, ?, ?, ?, ?, ?, ?, ?)", {small, null, "-0.5000", "min", "", "1999-12-31T23:59:59", "1999-12-31", "é ü"})
local rows, cols = db:query("SELECT * FROM types ORDER BY id")
assert(table.concat(cols, ",") == "id,small,price,name,data,ts,day,note", table.concat(cols, ","))
assert(#rows == 2)
local lo, hi = rows[1], rows[2]
assert(lo.id == small and math.type(lo.id) == "integer", tostring(lo.id))
assert(hi.id == big and math.type(hi.id) == "integer")
assert(hi.price == "12345678.9012" and lo.price == "-0.5000", tostring(hi.price) .. " " .. tostring(lo.price))
assert(hi.data == all, "binary data changed")
assert(lo.data == "")
assert(lo.small == null and hi.note == null, "NULL is the sentinel")
assert(hi.ts == "2024-02-29T13:14:15.123456", hi.ts)
assert(lo.ts == "1999-12-31T23:59:59", lo.ts)
assert(hi.day == "2024-02-29", hi.day)
assert(lo.note == "é ü")
local arr = db:query("SELECT id, name FROM types WHERE name = ?", {"max"}, {array = true})
assert(arr[1][1] == big and arr[1][2] == "max")
assert(db:query("SELECT COUNT(*) AS n FROM types WHERE small IS NULL")[1].n == 1)
-- Placeholders inside quotes are text.
assert(db:query("SELECT '?' AS q, ? AS v", {"x"})[1].q == "?")

-- exec returns affected rows.
assert(db:exec("UPDATE types SET note = ? WHERE id = ?", {"updated", big}) == 1)

-- Transactions: commit on return, rollback on error.
local r = db:transaction(function(tx)
  tx:exec("UPDATE types SET name = 'in-tx' WHERE id = ?", {big})
  return tx:query("SELECT name FROM types WHERE id = ?", {big})[1].name
end)
assert(r == "in-tx")
assert(db:query("SELECT name FROM types WHERE id = ?", {big})[1].name == "in-tx")
local ok, err = pcall(db.transaction, db, function(tx)
  tx:exec("DELETE FROM types")
  error("changed my mind")
end)
assert(not ok and err.message:find("changed my mind"))
assert(db:query("SELECT COUNT(*) AS n FROM types")[1].n == 2, "rolled back")

-- SQL errors carry the server's code and the script line.
local ok2, err2 = pcall(db.query, db, "SELECT * FROM no_such_table")
assert(not ok2 and err2.kind == "not_found", err2.kind)
assert(err2.context.sql_code == (my and "1146" or "42P01"), tostring(err2.context.sql_code))
assert(err2.location:find("sql_spec.lua:"), err2.location)
local ok3, err3 = pcall(db.exec, db, "INSERT INTO types (id) VALUES (?)", {big})
assert(not ok3 and err3.kind == "conflict", err3.kind .. " " .. err3.message)
local ok4, err4 = pcall(db.query, db, "SELEC 1")
assert(not ok4 and err4.kind == "invalid_input", err4.kind)

-- Streaming many rows.
db:exec("DROP TABLE IF EXISTS many")
db:exec("CREATE TABLE many (id BIGINT PRIMARY KEY, a VARCHAR(64), b VARCHAR(64), v VARCHAR(100))")
local batch = {}
local n = 5000
for i = 1, n, 500 do
  local values, params = {}, {}
  for j = i, i + 499 do
    values[#values + 1] = "(?, ?, ?, ?)"
    params[#params + 1] = j
    params[#params + 1] = "a" .. j
    params[#params + 1] = (j % 7 == 0) and null or ("b" .. j)
    params[#params + 1] = ("v"):rep(j % 100)
  end
  db:exec("INSERT INTO many VALUES " .. table.concat(values, ","), params)
end
local seen, last = 0, 0
for row in db:rows("SELECT id FROM many ORDER BY id") do
  seen = seen + 1
  assert(row.id == last + 1)
  last = row.id
end
assert(seen == n, seen)

-- copy_table within and across servers, in every conflict mode.
local function make(d, name)
  d:exec("DROP TABLE IF EXISTS " .. name)
  d:exec("CREATE TABLE " .. name .. " (id BIGINT PRIMARY KEY, a VARCHAR(64), b VARCHAR(64), v VARCHAR(100))")
end
for _, target in ipairs({db, other}) do
  make(target, "many_copy")
  local rep = ferry.sql.copy_table(db, target, {table = "many", dst_table = "many_copy", workers = 3, batch = 700, verify = "checksum"})
  assert(rep.rows == n and rep.target_rows == n and rep.verified == "checksum", ferry.json.encode(rep))
  -- error: the target already has the rows.
  local okc, errc = pcall(ferry.sql.copy_table, db, target, {table = "many", dst_table = "many_copy"})
  assert(not okc and errc.kind == "conflict", errc.message)
  -- ignore: existing rows stay as they are.
  target:exec("UPDATE many_copy SET a = 'kept' WHERE id = 10")
  target:exec("DELETE FROM many_copy WHERE id = 11")
  local repi = ferry.sql.copy_table(db, target, {table = "many", dst_table = "many_copy", on_conflict = "ignore", verify = "count"})
  assert(repi.target_rows == n)
  assert(target:query("SELECT a FROM many_copy WHERE id = 10")[1].a == "kept")
  assert(target:query("SELECT a FROM many_copy WHERE id = 11")[1].a == "a11")
  -- replace: existing rows are overwritten.
  ferry.sql.copy_table(db, target, {table = "many", dst_table = "many_copy", on_conflict = "replace", verify = "checksum"})
  assert(target:query("SELECT a FROM many_copy WHERE id = 10")[1].a == "a10")
end

-- where, columns and a Lua transform.
make(other, "filtered")
local rf = ferry.sql.copy_table(db, other, {table = "many", dst_table = "filtered", where = "id <= 100",
  columns = {"id", "a"}, transform = function(row)
    if row.id % 2 == 0 then return nil end
    row.a = row.a:upper()
    return row
  end, verify = "none"})
assert(rf.rows == 100)
assert(other:query("SELECT COUNT(*) AS n FROM filtered")[1].n == 50)
assert(other:query("SELECT a, b FROM filtered WHERE id = 3")[1].a == "A3")
assert(other:query("SELECT b FROM filtered WHERE id = 3")[1].b == null)

-- Refusals name what is wrong.
local okm, errm = pcall(ferry.sql.copy_table, db, other, {table = "many", dst_table = "no_such_target"})
assert(not okm and errm.kind == "not_found" and errm.message:find("no_such_target"), errm.message)
other:exec("DROP TABLE IF EXISTS narrow")
other:exec("CREATE TABLE narrow (id BIGINT PRIMARY KEY, a VARCHAR(64))")
local okn, errn = pcall(ferry.sql.copy_table, db, other, {table = "many", dst_table = "narrow"})
assert(not okn and errn.message:find("lacks column%(s%) b, v"), errn.message)
local oko, erro = pcall(ferry.sql.copy_table, db, other, {table = "many", bogus = 1})
assert(not oko and erro.message:find("unknown option 'bogus'"))
print("sql ok: " .. db.backend .. " -> " .. other.backend)
