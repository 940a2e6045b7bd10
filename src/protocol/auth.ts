/**
 * Where a browser puts its API key or conversation token on a websocket
 * (it cannot set headers there): shared by the gateway, which reads them,
 * and the web app, which sends them.
 */

/** The subprotocol a QuiLLMan client offers beside its credential. */
export const APP_SUBPROTOCOL = 'quillman';
/** `new WebSocket(url, ['quillman', 'quillman.bearer.' + token])` */
export const AUTH_SUBPROTOCOL_PREFIX = 'quillman.bearer.';
/** `wss://host/api/chat?token=…`, the last resort: proxies may log it. */
export const AUTH_QUERY_PARAM = 'token';
