/**
 * fetch (undici) rejects with a bare "fetch failed" TypeError; what went wrong
 * (ECONNREFUSED, ENOTFOUND, UND_ERR_SOCKET…) sits as a string `code` on an
 * error somewhere down its `cause` chain.
 */

/** How deep to follow `cause`: undici nests at most a couple of levels, and a cycle must not hang us. */
const MAX_CAUSE_DEPTH = 4;

/** The first string `code` on the error or down its cause chain. */
export function networkErrorCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let i = 0; i < MAX_CAUSE_DEPTH && e && typeof e === 'object'; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
