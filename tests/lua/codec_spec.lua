-- JSON, CSV, INI, properties.
local j = ferry.json
local v = j.decode('{"a":[1,2,{"b":null}],"big":9223372036854775807,"neg":-9223372036854775808,"f":1.5,"s":"\\u00e9"}')
assert(v.a[2] == 2 and v.a[3].b == j.null)
assert(v.big == math.maxinteger and v.neg == math.mininteger and math.type(v.big) == "integer")
assert(v.f == 1.5 and v.s == "é")
local again = j.decode(j.encode(v))
assert(again.big == v.big and again.a[3].b == j.null)
assert(j.encode(j.decode("[]")) == "[]", "arrays stay arrays")
assert(j.encode({}) == "{}")
local ok, err = pcall(j.decode, "<html>502 Bad Gateway</html>")
assert(not ok and err.kind == "invalid_input" and err.message:find("502 Bad Gateway", 1, true))
assert(j.encode({x = 1}, {pretty = true}):find("\n"))

local rows, cols = ferry.csv.decode('id,payload\n1,"{""type"":""local""}"\n2,"a\\b"\n')
assert(#rows == 2 and cols[2] == "payload")
assert(rows[1].payload == '{"type":"local"}' and rows[2].payload == "a\\b")
local text = ferry.csv.encode(rows, {columns = cols})
local back = ferry.csv.decode(text)
assert(back[1].payload == rows[1].payload and back[2].payload == "a\\b")
local raw = ferry.csv.decode("1\t2\n3\t4\n", {header = false, delimiter = "\t"})
assert(raw[2][2] == "4")

local conf = ferry.ini.decode_ordered("[fileserver]\nport = 8082\n[block_backend]\nname = s3\nbucket = blocks\n")
assert(conf[2].name == "block_backend" and conf[2].entries[2][2] == "blocks")
conf[2].entries[2][2] = "new-blocks"
local out = ferry.ini.encode(conf)
assert(out == "[fileserver]\nport = 8082\n\n[block_backend]\nname = s3\nbucket = new-blocks\n", out)
local ok2, err2 = pcall(ferry.ini.decode, "[a]\nnot a pair\n")
assert(not ok2 and err2.message:find("line 2"))

local props = ferry.properties.decode([[
druid.metadata.storage.type=postgresql
druid.metadata.storage.connector.connectURI=jdbc:postgresql://localhost:5432/druid
druid.storage.storageDirectory=/var/druid/segments
]])
assert(props["druid.metadata.storage.type"] == "postgresql")
assert(ferry.properties.decode(ferry.properties.encode(props))["druid.storage.storageDirectory"] == "/var/druid/segments")
print("codec ok")
