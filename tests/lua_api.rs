//! The Lua API as scripts see it: spec scripts under tests/lua, and every example in the API
//! reference (the same text `ferry doc` prints) run as a script.

use crate::common;

use common::Workspace;

fn run_spec(name: &str, expect: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/lua")
        .join(name);
    let ws = Workspace::new();
    ws.ferry()
        .args(["run", path.to_str().unwrap(), "-q", "--state", "state"])
        .run()
        .code(0)
        .stdout_has(expect);
}

#[test]
fn errors_are_structured_in_lua() {
    run_spec("errors_spec.lua", "errors ok");
}

#[test]
fn task_spawn_poll_and_parallel() {
    run_spec("task_spec.lua", "task ok");
}

#[test]
fn codecs_round_trip() {
    run_spec("codec_spec.lua", "codec ok");
}

#[test]
fn misspelled_option_keys_are_refused_in_every_module() {
    run_spec("options_spec.lua", "options ok");
}

#[test]
fn fs_and_exec() {
    run_spec("fs_exec_spec.lua", "fs exec ok");
}

/// Functions and handle methods whose example needs a server the examples cannot reach (a
/// database, a remote HTTP API): their examples are checked with `ferry check` instead of run (the
/// functions themselves are exercised by tests/sql.rs and tests/http.rs against real servers). A
/// class name stands for all its methods.
const CHECKED_NOT_RUN: &[&str] = &[
    "sql.connect",
    "sql.copy_table",
    "http.row_batches",
    "http.get",
    "http.post",
    "http.put",
    "http.delete",
    "ferry.sql.Db",
    "ferry.http.Response",
];

/// Every module function and every handle method, with the name the test reports.
fn documented() -> Vec<(
    String,
    &'static str,
    &'static ferry::runtime::registry::FnDoc,
)> {
    let mut out = Vec::new();
    for m in ferry::modules::modules() {
        for f in m.functions {
            out.push((format!("{}.{}", m.name, f.name), "", f));
        }
    }
    for c in ferry::modules::classes() {
        for f in c.methods {
            out.push((format!("{}:{}", c.name, f.name), c.name, f));
        }
    }
    out
}

#[test]
fn every_documented_example_runs() {
    let ws = Workspace::new();
    let (mut count, mut methods) = (0, 0);
    let mut missing = Vec::new();
    for (path, class, f) in documented() {
        let Some(example) = f.example else {
            missing.push(path);
            continue;
        };
        count += 1;
        if !class.is_empty() {
            methods += 1;
        }
        let file = format!("ex_{}.lua", path.replace([':', '.'], "_"));
        ws.write(&file, example);
        if CHECKED_NOT_RUN.contains(&path.as_str()) || CHECKED_NOT_RUN.contains(&class) {
            let out = ws.ferry().args(["check", &format!("./{file}")]).run();
            assert_eq!(
                out.code, 0,
                "example of {path} fails ferry check:\n{example}\n--- stdout\n{}\n--- stderr\n{}",
                out.stdout, out.stderr
            );
            continue;
        }
        let out = ws
            .ferry()
            .args([
                "run",
                &format!("./{file}"),
                "-q",
                "--yes",
                "--state",
                &format!("state-{count}"),
            ])
            .run();
        assert_eq!(
            out.code, 0,
            "example of {path} failed:\n{example}\n--- stderr\n{}",
            out.stderr
        );
    }
    assert!(
        missing.is_empty(),
        "functions and methods without an example: {missing:?}"
    );
    assert!(count >= 90, "only {count} examples");
    assert!(methods >= 32, "only {methods} method examples");
}

/// A checked-only example still goes through `ferry check`, which refuses a misspelled option.
#[test]
fn ferry_check_refuses_a_misspelled_option_of_a_function_and_a_handle_method() {
    let ws = Workspace::new();
    ws.write(
        "bad.lua",
        "local s = ferry.store.open(\"memory://x\")\n\
         for e in s:list(\"a/\", {delimter = true}) do end\n\
         ferry.http.get(\"http://h/\", {timout = 5})\n",
    );
    let out = ws.ferry().args(["check", "./bad.lua"]).run();
    assert_ne!(out.code, 0, "ferry check passed a misspelled key");
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(
        text.contains(
            "bad.lua:2: ferry.store.Store:list: unknown option 'delimter' (did you mean 'delimiter'?)"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "bad.lua:3: ferry.http.get: unknown option 'timout' (did you mean 'timeout'?)"
        ),
        "{text}"
    );
}

#[test]
fn every_module_function_is_documented_and_exists() {
    let ws = Workspace::new();
    let mut checks = String::new();
    for m in ferry::modules::modules() {
        let path = if m.name == "runbook" {
            "ferry".to_string()
        } else {
            format!("ferry.{}", m.name)
        };
        for f in m.functions {
            checks.push_str(&format!(
                "assert(type({path}.{0}) == 'function', '{path}.{0} is documented but missing')\n",
                f.name
            ));
        }
        let names: Vec<String> = m
            .functions
            .iter()
            .map(|f| format!("{:?}", f.name))
            .collect();
        checks.push_str(&format!(
            "do local doc = {{}} for _, n in ipairs({{{}}}) do doc[n] = true end\n\
             for k, v in pairs({path}) do if type(v) == 'function' then assert(doc[k], '{path}.' .. k .. ' is not documented') end end end\n",
            names.join(", ")
        ));
    }
    checks.push_str("print('api ok')\n");
    ws.write("api.lua", &checks);
    ws.ferry()
        .args(["run", "./api.lua", "-q"])
        .run()
        .code(0)
        .stdout_has("api ok");
}

#[test]
fn druid_layout_and_load_specs() {
    run_spec("druid_spec.lua", "druid ok");
}

#[test]
fn astra_nodetool_schema_and_credentials() {
    run_spec("astra_spec.lua", "astra ok");
}

#[test]
fn pegasus_outputs_versions_and_config() {
    run_spec("pegasus_spec.lua", "pegasus ok");
}

/// Seconds out of a Duration's range (math.huge, 1e300, NaN, negative) never panic: they mean
/// "no practical limit" or zero.
#[test]
fn huge_and_odd_seconds_do_not_panic() {
    let ws = common::Workspace::new();
    ws.write(
        "t.lua",
        r#"
assert(ferry.exec.run{"true", timeout = math.huge}.code == 0)
assert(ferry.exec.run{"true", timeout = 1e300}.code == 0)
ferry.task.sleep(-1)
ferry.task.sleep(0/0)
local n = 0
assert(ferry.task.poll{every = 0.01, timeout = math.huge, check = function() n = n + 1; return n >= 2 end})
local ok, err = pcall(ferry.sql.connect, "mysql://x@127.0.0.1:1/x", {query_timeout = math.huge, connect_timeout = 1})
assert(not ok and err.kind ~= "lua", tostring(err))
print("odd seconds ok")
"#,
    );
    ws.ferry()
        .args(["run", "./t.lua", "-q"])
        .run()
        .code(0)
        .stdout_has("odd seconds ok");
}

#[test]
fn starrocks_spec() {
    run_spec("starrocks_spec.lua", "starrocks ok");
}

/// The options tables of db handle methods refuse misspelled keys ("did you mean"), on a real
/// PostgreSQL connection, and still take the right ones.
#[test]
fn db_handle_methods_refuse_misspelled_option_keys() {
    let Some(url) = common::db::postgres_url_or_skip() else {
        return;
    };
    let ws = Workspace::new();
    ws.write(
        "db.lua",
        &format!(
            r#"local db = ferry.sql.connect({url:?})
local function refuses(method, f, key, near)
  local ok, err = pcall(f)
  assert(not ok, method .. " accepted " .. key)
  local want = ("ferry.sql.Db:%s: unknown option '%s' (did you mean '%s'?)"):format(method, key, near)
  local m = type(err) == "table" and err.message or tostring(err)
  assert(m:find(want, 1, true), "expected: " .. want .. "\ngot: " .. m)
end
refuses("query", function() return db:query("select 1 as n", {{}}, {{arary = true}}) end, "arary", "array")
refuses("rows", function() return db:rows("select 1 as n", {{}}, {{aray = true}}) end, "aray", "array")
assert(db:query("select 1 as n", {{}}, {{array = true}})[1][1] == 1)
for row in db:rows("select 2 as n", {{}}, {{array = true}}) do assert(row[1] == 2) end
print("db options ok")
"#
        ),
    );
    ws.ferry()
        .args(["run", "./db.lua", "-q", "--state", "state"])
        .run()
        .code(0)
        .stdout_has("db options ok");
}
