/** The page served until the web app is built, so `/` never answers 404. */
export function placeholderPage(engineLabel = 'unknown'): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>QuiLLMan</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#111}code{background:#eee;padding:.1rem .3rem;border-radius:3px}</style>
</head><body>
<h1>QuiLLMan gateway</h1>
<p>The gateway is running with the <strong>${escapeHtml(engineLabel)}</strong> engine, but the web app is not built.</p>
<p>Run <code>npm start</code> (or <code>npm run build</code>) in the repository to build it, then reload this page.</p>
<p>Meanwhile: the Moshi websocket is at <code>/api/chat</code>, readiness at <a href="/health">/health</a>, metrics at <a href="/metrics">/metrics</a>, and <code>quillman chat ws://HOST/api/chat -i speech.wav</code> talks from a terminal.</p>
</body></html>`;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
