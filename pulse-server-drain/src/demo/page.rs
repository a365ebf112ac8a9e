//! The demo's HTML page: shows the session's counter, version and instance, and keeps a WebSocket open
//! for the session (reconnecting within the grace; reloading without version affinity when it cannot).

fn escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// The page for `session`.
pub(crate) fn render(app: &str, version: &str, instance: &str, session: &str) -> String {
    let (app, version, instance, session) = (escape(app), escape(version), escape(instance), escape(session));
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{app} {version}</title>
<style>body{{font-family:sans-serif;margin:3em}} #counter{{font-size:4em}} .dim{{color:#777}}</style>
</head>
<body>
<h1>{app}</h1>
<p>version <b id="version">{version}</b> on instance <b id="instance">{instance}</b></p>
<p class="dim">session <code id="session">{session}</code> &middot; socket <span id="socket">connecting</span></p>
<div id="counter">0</div>
<button id="inc">+1</button>
<script>
const session = "{session}";
const version = "{version}";
let failures = 0, ws = null;
function reloadFresh() {{ location.replace(location.pathname); }}
function connect() {{
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  ws = new WebSocket(`${{proto}}//${{location.host}}/ws?session=${{session}}&pulse_version=${{encodeURIComponent(version)}}`);
  let opened = false;
  ws.onopen = () => {{ opened = true; failures = 0; document.getElementById("socket").textContent = "open"; }};
  ws.onmessage = (e) => {{
    const m = JSON.parse(e.data);
    if (m.counter !== undefined) document.getElementById("counter").textContent = m.counter;
    if (m.version) document.getElementById("version").textContent = m.version;
    if (m.instance) document.getElementById("instance").textContent = m.instance;
  }};
  ws.onclose = (e) => {{
    document.getElementById("socket").textContent = `closed (${{e.code}} ${{e.reason}})`;
    if (e.code === 4001) return;
    if (e.code === 4404 || e.code === 1000) {{ reloadFresh(); return; }}
    if (!opened) failures += 1;
    if (failures >= 3) {{ reloadFresh(); return; }}
    setTimeout(connect, 500 + 500 * failures);
  }};
}}
document.getElementById("inc").onclick = () => {{ if (ws && ws.readyState === 1) ws.send(JSON.stringify({{type: "increment"}})); }};
setInterval(() => {{ if (ws && ws.readyState === 1) ws.send(JSON.stringify({{type: "increment"}})); }}, 1000);
connect();
</script>
</body>
</html>
"#
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_values() {
        let html = super::render("a<b", "v1", "i\"1", "s");
        assert!(html.contains("a&lt;b") && html.contains("i&quot;1"));
    }
}
