//! The description of `ferry.http`: its functions, their typed options, and the response
//! class, read by the option checks, `ferry doc`, the LuaLS stubs, `ferry check` and REPL
//! completion.

use crate::runtime::registry::{ClassDoc, FnDoc, ModuleDef, Opt, Param};

/// The options of `ferry.http.request`, which `get`, `post`, `put` and `delete` take too.
const REQUEST_OPTIONS: &[Opt] = &[
    Opt::def("method", "string", "\"GET\"").doc("the HTTP method, any case"),
    Opt::new("url", "string")
        .doc("the URL: required in request{...}; get, post, put and delete take it first instead"),
    Opt::new("query", "table<string, string|number|boolean>")
        .doc("query parameters added to the URL, sorted by name"),
    Opt::new("headers", "table<string, string|number|boolean>").doc("request headers"),
    Opt::new("json", "table|string|number|boolean")
        .doc("body: the value as JSON, with Content-Type application/json"),
    Opt::new(
        "body",
        "string|(fun(): string?)|{store: ferry.store.Store, key: string}|ferry.http.row_batches.opts",
    )
    .doc("body: a string, an object (re-read on retries), an iterator of strings or a query's rows (streamed)"),
    Opt::new("form", "table<string, string|number|boolean>")
        .doc("body: URL-encoded form fields"),
    Opt::new("file", "string").doc("body: a local file, re-read on retries"),
    Opt::def("object", "{store: ferry.store.Store, key: string}|[ferry.store.Store, string]", "{store, key}")
        .doc("body: an object of a store, re-read on retries"),
    Opt::new("bearer", "string").doc("an Authorization: Bearer token, never logged"),
    Opt::def("basic", "{user: string, password: string?}|[string, string?]", "{user, password}")
        .doc("HTTP basic authentication, the password never logged"),
    Opt::def("timeout", "number", "60").doc("seconds for each attempt"),
    Opt::def("retries", "integer", "3")
        .doc("retries of connection errors, 429 and 5xx, with backoff and jitter, honouring Retry-After"),
    Opt::new("retry_non_idempotent", "boolean").doc("retry POST and PATCH too"),
    Opt::new("forward_auth", "boolean")
        .doc("send the credentials to another host a redirect points at"),
    Opt::new("expect_continue", "boolean")
        .doc("add Expect: 100-continue (the body is sent without waiting for the 100)"),
    Opt::new("max_redirects", "integer").doc("redirects followed"),
    Opt::new("resolve_redirect", "boolean").doc(
        "send an empty body first and the streamed body to a 307/308's Location (one hop)",
    ),
    Opt::new("expect_status", "integer|integer[]").doc("raise on any other status"),
    Opt::new("throttle", "ferry.throttle.Limiter|number|string").doc("upload bytes/s"),
];

pub static MODULE: ModuleDef = ModuleDef {
    name: "http",
    summary: "HTTP requests with retries, redirects, streamed uploads and masked credentials.",
    functions: &[
        FnDoc {
            name: "request",
            signature: "ferry.http.request{method, url, query, headers, json | body | form | file | object = {store, key}, bearer | basic = {user, password}, timeout = 60, retries = 3, retry_non_idempotent, forward_auth, expect_continue, max_redirects, resolve_redirect, expect_status, throttle} -> response",
            params: &[Param::new("opts", "table")],
            options: REQUEST_OPTIONS,
            returns: "ferry.http.Response",
            doc: "Sends a request and returns the response (ferry.http.Response). Give at most \
                  one body: json, body, form, file or object. Connection errors, 429 and 5xx are \
                  retried; POST and PATCH only with retry_non_idempotent = true. Redirects are \
                  followed; credentials go to another host only with forward_auth = true \
                  (StarRocks Stream Load's 307 from FE to BE needs it); 307/308 re-send the body, \
                  which is re-read from its file or store object. Bearer tokens, passwords and \
                  credential-like query values never appear in logs. Under --dry-run only GET and \
                  HEAD are sent; other methods are reported and return {status = 0, dry_run = \
                  true} (a streamed body is not read). A query body (`body = {db = d, sql, \
                  ...}`, the options of ferry.http.row_batches but max_bytes) is encoded as \
                  there. Iterator and query bodies are streamed chunked through a channel of a \
                  few 64 KiB chunks, so a slow server stalls the producer instead of growing \
                  memory; they are never retried (the error says 'request body is a stream and \
                  cannot be replayed; not retried'), a failing producer aborts the request \
                  mid-body, and r.sent = {bytes, rows} tells what went. A stream can follow a \
                  redirect only before any of it was sent: resolve_redirect = true is the way to \
                  reach a StarRocks BE through the FE's Stream Load redirect (any answer other \
                  than 307/308 is returned with r.body_sent = false).",
            example: Some(
                "local n = 0\nlocal function lines() n = n + 1; if n <= 3 then return \"line \" .. n .. \"\\n\" end end\n-- nothing listens on port 9: a stream is not retried, and the error says why\nlocal ok, err = pcall(ferry.http.request, {method = \"PUT\", url = \"http://127.0.0.1:9/upload\", body = lines, retries = 2})\nassert(not ok and err.message:find(\"cannot be replayed\", 1, true))\nassert(n == 4) -- the iterator ran to its end",
            ),
        },
        FnDoc {
            name: "row_batches",
            signature: "ferry.http.row_batches{db = d, sql, params, format = \"csv\" | \"json_lines\" | \"json_array\", column_separator, row_delimiter, datetime_columns, max_bytes} -> iterator",
            params: &[Param::new("opts", "table")],
            options: &[
                Opt::new("db", "ferry.sql.Db").doc("the connection to query").required(),
                Opt::new("sql", "string").doc("the query").required(),
                Opt::new("params", "(string|number|boolean|lightuserdata)[]").doc("values of its placeholders"),
                Opt::def(
                    "format",
                    "\"csv\"|\"json_lines\"|\"json_array\"",
                    "\"csv\"",
                )
                .doc("csv: NULL as \\N, no quoting, a value holding a separator is a csv_unsafe error"),
                Opt::def("column_separator", "string", "\"\\t\"").doc("csv's column separator"),
                Opt::def("row_delimiter", "string", "\"\\n\"").doc("csv's row delimiter"),
                Opt::new("datetime_columns", "string[]")
                    .doc("columns whose ISO T becomes a space"),
                Opt::new("max_bytes", "integer|string").doc(
                    "most bytes of one body, a number or a size such as \"64MiB\" (required here; a request body = {db, sql, ...} takes none)",
                ),
            ],
            returns: "(fun(): string?, integer?)",
            doc: "A query's rows cut into bodies of at most max_bytes each (a row larger than \
                  max_bytes goes alone): each call returns the next body as a string and its row \
                  count, then nil. A json_array body is a whole JSON array. One query is read as \
                  the bodies are taken, so memory holds one body; a string body has a \
                  Content-Length and can be retried, unlike a streamed one.",
            example: Some(
                r#"local db = ferry.sql.connect("mysql://ferry:secret@10.0.0.5:3306/legacy")
for batch in ferry.http.row_batches{db = db, sql = "select * from orders", format = "json_lines", max_bytes = 64 * 1024 * 1024} do
  ferry.http.put("http://fe.example:8030/api/app/orders/_stream_load", {body = batch, basic = {user = "root", password = ""}, forward_auth = true}):raise()
end"#,
            ),
        },
        FnDoc {
            name: "get",
            signature: "ferry.http.get(url [, opts]) -> response",
            params: &[Param::new("url", "string"), Param::opt("opts", "table")],
            options: REQUEST_OPTIONS,
            returns: "ferry.http.Response",
            doc: "ferry.http.request with method GET; opts as for request.",
            example: Some(
                r#"local r = ferry.http.get("https://api.example.com/v1/jobs/7", {bearer = "token", timeout = 10})
if r:ok() then print(r:json().state) end"#,
            ),
        },
        FnDoc {
            name: "post",
            signature: "ferry.http.post(url [, opts]) -> response",
            params: &[Param::new("url", "string"), Param::opt("opts", "table")],
            options: REQUEST_OPTIONS,
            returns: "ferry.http.Response",
            doc: "ferry.http.request with method POST.",
            example: Some(
                r#"local r = ferry.http.post("https://api.example.com/v1/jobs", {json = {name = "copy"}, expect_status = 201})
print(r:json().id)"#,
            ),
        },
        FnDoc {
            name: "put",
            signature: "ferry.http.put(url [, opts]) -> response",
            params: &[Param::new("url", "string"), Param::opt("opts", "table")],
            options: REQUEST_OPTIONS,
            returns: "ferry.http.Response",
            doc: "ferry.http.request with method PUT.",
            example: Some(
                r#"ferry.http.put("https://bucket.example.com/report.csv", {body = "a,b\n1,2\n", headers = {["content-type"] = "text/csv"}}):raise()"#,
            ),
        },
        FnDoc {
            name: "delete",
            signature: "ferry.http.delete(url [, opts]) -> response",
            params: &[Param::new("url", "string"), Param::opt("opts", "table")],
            options: REQUEST_OPTIONS,
            returns: "ferry.http.Response",
            doc: "ferry.http.request with method DELETE.",
            example: Some(
                r#"ferry.http.delete("https://api.example.com/v1/jobs/7", {bearer = "token", expect_status = {200, 204, 404}})"#,
            ),
        },
    ],
    classes: &[&RESPONSE],
    constants: &[],
    build: super::lua::build,
};

/// The handle class of this module, described once for the option checks, `ferry doc`, the LuaLS
/// stubs, `ferry check` and REPL completion.
pub static RESPONSE: ClassDoc = ClassDoc {
    name: "ferry.http.Response",
    doc: "What ferry.http.request returns: a table with these fields (header names lower case; \
          sent = {bytes, rows} after a streamed body; dry_run = true for a request only \
          reported under --dry-run) and methods.",
    fields: &[
        ("status", "integer"),
        ("headers", "table<string, string>"),
        ("body", "string"),
        ("url", "string"),
        ("method", "string"),
        ("attempts", "integer"),
        ("body_sent", "boolean"),
        ("sent", "{bytes: integer, rows: integer?}?"),
        ("dry_run", "boolean?"),
    ],
    methods: &[
        FnDoc {
            name: "json",
            signature: "r:json() -> value",
            params: &[],
            options: &[],
            returns: "any",
            doc: "The body decoded as JSON; an invalid_input error showing the start of the body when it is not JSON.",
            example: Some(
                r#"local job = ferry.http.get("https://api.example.com/v1/jobs/7"):raise():json()
ferry.log.info("job state", job.state)"#,
            ),
        },
        FnDoc {
            name: "ok",
            signature: "r:ok() -> boolean",
            params: &[],
            options: &[],
            returns: "boolean",
            doc: "Whether the status is 2xx.",
            example: Some(
                r#"local r = ferry.http.get("https://api.example.com/health", {retries = 0})
if not r:ok() then ferry.log.warn("unhealthy:", r.status) end"#,
            ),
        },
        FnDoc {
            name: "raise",
            signature: "r:raise() -> r",
            params: &[],
            options: &[],
            returns: "ferry.http.Response",
            doc: "Raises an error naming the status for a non-2xx response, else returns r.",
            example: Some(
                r#"local r = ferry.http.post("https://api.example.com/v1/jobs", {json = {name = "copy"}}):raise()
print(r.status)"#,
            ),
        },
    ],
};
