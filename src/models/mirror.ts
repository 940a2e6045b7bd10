/**
 * Where model files are fetched from: the registry's URLs, or a mirror.
 *
 * QUILLMAN_MODEL_MIRROR=<base URL> sends every download to a mirror instead:
 * https://<host>/<path> is fetched from <base>/<host>/<path>. That is the
 * layout `wget -x <url>` writes, so a mirror is any static file server over a
 * folder filled that way (an offline copy, a company cache; the tests use it
 * to stand in for Hugging Face and GitHub).
 *
 * HF_ENDPOINT, the Hugging Face tools' own setting, replaces
 * https://huggingface.co only (e.g. HF_ENDPOINT=https://hf-mirror.com); the
 * general mirror wins when both are set.
 */
export const MIRROR_ENV = 'QUILLMAN_MODEL_MIRROR';

function trimSlash(s: string): string {
  return s.trim().replace(/\/+$/, '');
}

export function mirroredUrl(url: string, env: NodeJS.ProcessEnv = process.env): string {
  const mirror = env[MIRROR_ENV]?.trim();
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return url;
  }
  if (mirror) return `${trimSlash(mirror)}/${parsed.host}${parsed.pathname}${parsed.search}`;
  const hf = env.HF_ENDPOINT?.trim();
  if (hf && parsed.host === 'huggingface.co') return `${trimSlash(hf)}${parsed.pathname}${parsed.search}`;
  return url;
}

/** Where downloads go instead of the registry's hosts, as a line for people; undefined when nowhere else. */
export function describeMirror(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const mirror = env[MIRROR_ENV]?.trim();
  if (mirror) return `Downloading from the mirror ${mirror}`;
  const hf = env.HF_ENDPOINT?.trim();
  return hf ? `Downloading Hugging Face files from ${hf} (HF_ENDPOINT)` : undefined;
}

/** Checked once at start-up so a typo fails with the setting's name rather than as a download error. */
export function checkMirror(env: NodeJS.ProcessEnv = process.env): void {
  for (const name of [MIRROR_ENV, 'HF_ENDPOINT']) {
    const value = env[name]?.trim();
    if (!value) continue;
    let ok = false;
    try {
      ok = ['http:', 'https:'].includes(new URL(value).protocol);
    } catch {
      ok = false;
    }
    if (!ok) throw new Error(`${name}=${JSON.stringify(value)} is not an http(s) URL; set it to a mirror's base URL (e.g. http://mirror.local/models) or unset it`);
  }
}
