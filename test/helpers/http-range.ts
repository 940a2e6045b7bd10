import type { ServerResponse } from 'node:http';

/**
 * Answers the head of a download that may ask to resume (`Range: bytes=N-`,
 * the only form our downloader sends): 206 from N, 416 past the end, else
 * 200. Returns the offset to send the body from, or undefined when the
 * response is already complete (416).
 */
export function writeRangeHead(res: ServerResponse, body: Buffer, range: string | undefined, headers: Record<string, string> = {}): number | undefined {
  const m = range?.match(/^bytes=(\d+)-$/);
  const start = m ? Number(m[1]) : 0;
  if (m && start >= body.length) {
    res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
    return undefined;
  }
  const head: Record<string, string | number> = { ...headers, 'content-length': body.length - start };
  if (m) head['content-range'] = `bytes ${start}-${body.length - 1}/${body.length}`;
  res.writeHead(m ? 206 : 200, head);
  return start;
}
