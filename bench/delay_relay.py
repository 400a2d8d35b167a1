#!/usr/bin/env python3
"""A TCP relay that delays every chunk by DELAY_MS in each direction: an emulated round trip
of 2 x DELAY_MS between a client and a proxy (the kernel here has no netem). Order is kept
per direction; every connection is independent.
    delay_relay.py LISTEN_ADDR LISTEN_PORT UP_ADDR UP_PORT DELAY_MS"""
import asyncio
import sys


async def pipe(reader, writer, delay):
    queue = asyncio.Queue()

    async def sender():
        loop = asyncio.get_running_loop()
        while True:
            due, data = await queue.get()
            if data is None:
                break
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        try:
            writer.write_eof()
        except OSError:
            pass

    task = asyncio.ensure_future(sender())
    loop = asyncio.get_running_loop()
    try:
        while True:
            data = await reader.read(65536)
            await queue.put((loop.time() + delay, data if data else None))
            if not data:
                break
    except OSError:
        await queue.put((0, None))
    await task


async def handle(creader, cwriter, up, delay):
    try:
        ureader, uwriter = await asyncio.open_connection(*up)
    except OSError:
        cwriter.close()
        return
    await asyncio.gather(pipe(creader, uwriter, delay), pipe(ureader, cwriter, delay),
                         return_exceptions=True)
    cwriter.close()
    uwriter.close()


async def main():
    addr, port, uaddr, uport, delay_ms = sys.argv[1:6]
    delay = int(delay_ms) / 1000.0
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, (uaddr, int(uport)), delay), addr, int(port), backlog=512)
    async with server:
        await server.serve_forever()


asyncio.run(main())
