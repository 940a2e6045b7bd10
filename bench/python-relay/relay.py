"""A minimal websocket relay in Python, for the relay benchmark only.

It does what a FastAPI or aiohttp server in front of a model server does with
a conversation: accept the client's websocket, open one to a free upstream
worker, forward every message both ways as it is, and close both sides when
either closes. No parsing, no validation, no limits beyond aiohttp's, no
metrics: the least a relay can do, so that bench/gateway-relay.ts can put
QuiLLMan's gateway beside it under the same load.

    python relay.py --port 20600 --upstream ws://127.0.0.1:21000/api/chat [--upstream ...]

GET /health answers {"free": n, "upstreams": m}. Listens on 127.0.0.1 only.
"""

import argparse
import asyncio
import json
import os
import signal

import aiohttp
from aiohttp import web

# Ogg pages are at most ~64 KiB; anything far larger is not a conversation.
MAX_MESSAGE_BYTES = 1 << 20

FREE = web.AppKey("free", list)
UPSTREAMS = web.AppKey("upstreams", int)
SESSION = web.AppKey("session", aiohttp.ClientSession)


async def pump(source, sink):
    async for msg in source:
        if msg.type == aiohttp.WSMsgType.BINARY:
            await sink.send_bytes(msg.data)
        elif msg.type == aiohttp.WSMsgType.TEXT:
            await sink.send_str(msg.data)


def sendable(code):
    # 1005, 1006 and 1015 describe a close; they may not be sent in one.
    return code if code and 1000 <= code < 5000 and code not in (1005, 1006, 1015) else 1000


async def chat(request):
    free = request.app[FREE]
    if not free:
        return web.Response(status=503, text="no free upstream\n")
    upstream_url = free.pop()
    try:
        client = web.WebSocketResponse(compress=False, max_msg_size=MAX_MESSAGE_BYTES)
        await client.prepare(request)
        if request.query_string:
            upstream_url_q = f"{upstream_url}?{request.query_string}"
        else:
            upstream_url_q = upstream_url
        try:
            upstream = await request.app[SESSION].ws_connect(
                upstream_url_q, compress=0, max_msg_size=MAX_MESSAGE_BYTES
            )
        except (aiohttp.ClientError, asyncio.TimeoutError) as err:
            await client.close(code=1011, message=f"upstream unreachable: {err}".encode()[:120])
            return client
        async with upstream:
            to_upstream = asyncio.create_task(pump(client, upstream))
            to_client = asyncio.create_task(pump(upstream, client))
            done, pending = await asyncio.wait(
                {to_upstream, to_client}, return_when=asyncio.FIRST_COMPLETED
            )
            for leg in pending:
                leg.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            # Whoever closed first decides the code the other side sees.
            if to_client in done:
                await client.close(code=sendable(upstream.close_code))
            else:
                await upstream.close(code=sendable(client.close_code))
                await client.close()
        return client
    finally:
        free.append(upstream_url)


async def health(request):
    body = {"free": len(request.app[FREE]), "upstreams": request.app[UPSTREAMS]}
    return web.Response(text=json.dumps(body), content_type="application/json")


async def exit_with_parent(app):
    # A benchmark killed outright must not leave its relay holding the port.
    parent = os.getppid()

    async def watch():
        while os.getppid() == parent:
            await asyncio.sleep(1)
        os.kill(os.getpid(), signal.SIGTERM)

    task = asyncio.create_task(watch())
    yield
    task.cancel()


async def client_session(app):
    # limit=0: each conversation holds one upstream connection for its whole life;
    # aiohttp's default of 100 would queue the 101st.
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        app[SESSION] = session
        yield


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", action="append", required=True, help="ws:// URL of a worker; repeat")
    args = parser.parse_args()
    app = web.Application()
    app[FREE] = list(reversed(args.upstream))
    app[UPSTREAMS] = len(args.upstream)
    app.cleanup_ctx.append(client_session)
    app.cleanup_ctx.append(exit_with_parent)
    app.router.add_get("/api/chat", chat)
    app.router.add_get("/health", health)
    # The benchmark opens hundreds of conversations at once: a backlog of 128 would drop SYNs.
    web.run_app(
        app,
        host="127.0.0.1",
        port=args.port,
        access_log=None,
        backlog=4096,
        shutdown_timeout=2,
        print=lambda line: print(f"python relay listening on 127.0.0.1:{args.port}", flush=True),
    )


if __name__ == "__main__":
    main()
