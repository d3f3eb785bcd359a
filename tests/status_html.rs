//! `ferry status --html FILE --events EVENTS`: the page of a real run, rendered by headless
//! Chromium (Debian's, installed by tests/setup/chromium.sh); the screenshot must show the
//! throughput plot (pixels of the plot's line colour), not only the HTML contain it.

use crate::common;

use std::process::Command;

use common::Workspace;

/// Pixels of the colour (r, g, b) in a PNG screenshot, within a small tolerance.
fn pixels_of(png_path: &std::path::Path, (r, g, b): (u8, u8, u8)) -> usize {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(png_path).unwrap(),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let step = match info.color_type {
        png::ColorType::Rgba => 4,
        png::ColorType::Rgb => 3,
        other => panic!("unexpected PNG colour type {other:?}"),
    };
    buf[..info.buffer_size()]
        .chunks(step)
        .filter(|p| p[0].abs_diff(r) <= 12 && p[1].abs_diff(g) <= 12 && p[2].abs_diff(b) <= 12)
        .count()
}

#[test]
fn the_status_page_of_a_copy_shows_its_throughput_plot_in_chromium() {
    if !common::tool_or_skip("chromium", "status_html", "tests/setup/chromium.sh") {
        return;
    }
    let browser = "chromium";
    let ws = Workspace::new();
    for i in 0..70 {
        ws.write(&format!("src/f{i:02}.bin"), &"y".repeat(500));
    }
    ws.write(
        "c.lua",
        r#"
local p = ferry.params{{name = "dir", type = "string", required = true, doc = "workspace"}}
ferry.step("copy", "Copy the files", function()
  -- 20 objects/s: about 3.5 s, so the progress events (one a second) make a line.
  local r = ferry.store.copy(ferry.store.open("file://" .. p.dir .. "/src"),
    ferry.store.open("file://" .. p.dir .. "/dst", {create = true}), {ops_throttle = 20, title = "files"})
  return {copied = r.copied}
end)
"#,
    );
    let dir = format!("dir={}", ws.path().display());
    ws.ferry()
        .args(["run", "./c.lua", "-q", "-p", &dir, "--log-json", "ev.jsonl"])
        .run()
        .code(0);
    ws.ferry()
        .args([
            "status",
            "--state",
            ".ferry/state/c",
            "--html",
            "page.html",
            "--events",
            "ev.jsonl",
        ])
        .run()
        .code(0);
    let html = ws.read("page.html");
    assert!(html.contains("run / copy: throughput over time"), "{html}");
    assert!(html.contains("files (items/s)"), "{html}");
    assert!(html.contains("{&quot;copied&quot;:70}"), "{html}");
    let line = html
        .split("<polyline")
        .nth(1)
        .and_then(|p| p.split("points=\"").nth(1))
        .and_then(|p| p.split('"').next())
        .expect("a polyline");
    assert!(
        line.split(' ').count() >= 2,
        "the plot has fewer than two points: {line}"
    );

    // What a person sees: Chromium renders the page; the plot's blue line is on the screenshot.
    let shot = ws.join("shot.png");
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=900,700",
        ])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", ws.join("page.html").display()))
        .output()
        .unwrap();
    assert!(
        shot.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The legend's swatch is 14 x 4 = 56 pixels; a drawn line (3 px wide) adds far more. A page
    // without the plot has none.
    let blue = pixels_of(&shot, (0x1f, 0x77, 0xb4));
    assert!(
        blue > 150,
        "the screenshot shows {blue} pixels of the plot's line colour"
    );
    // The page without events says why there is no plot (and draws none).
    ws.ferry()
        .args(["status", "--state", ".ferry/state/c", "--html", "bare.html"])
        .run()
        .code(0);
    let bare = ws.read("bare.html");
    assert!(bare.contains("throughput plots need them") && !bare.contains("<polyline"));
}
