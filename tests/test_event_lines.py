"""The lines of a provider's event stream, however the network cuts its bytes: every line comes
out whole and in order, with its line end removed, as the SDK's own line reader gives them."""

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iridium.ai import provider, wire
from iridium.ai.provider import lines_of

LINE = st.binary(max_size=40).map(lambda line: line.replace(b"\r", b"").replace(b"\n", b""))


async def _collect(chunks):
    async def feed():
        for chunk in chunks:
            yield chunk

    return [line async for line in lines_of(feed())]


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@given(
    lines=st.lists(LINE, max_size=20),
    end=st.sampled_from([b"\n", b"\r\n", b"\r"]),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=30),
    last_end=st.booleans(),
)
def test_lines_survive_any_cut(lines, end, cuts, last_end):
    data = end.join(lines) + (end if last_end and lines else b"")
    expected = data.splitlines()
    assert asyncio.run(_collect(_cut(data, cuts))) == expected


def test_an_event_stream_read_a_byte_at_a_time():
    stream = (
        b'data: {"choices": [{"delta": {"content": "H\xc3\xa9"}}]}\r\n\r\n'
        b": keep-alive\n\n"
        b'data: {"choices": [{"delta": {"content": "llo"}}]}\n\n'
        b"data: [DONE]\n\n"
    )
    read = asyncio.run(_collect([stream[i : i + 1] for i in range(len(stream))]))
    events = [wire.event_data(line) for line in read]
    texts = [e["choices"][0]["delta"]["content"] for e in events if isinstance(e, dict)]
    assert texts == ["Hé", "llo"]
    assert [e for e in events if e is not None][-1] is wire.DONE


STREAM = (
    b'data: {"choices": [{"delta": {"content": "H\xc3\xa9"}}]}\n\n'
    b'data: {"choices": [{"delta": {"content": "llo"}}]}\n\n'
    b"data: [DONE]\n\n"
)


@pytest.mark.parametrize("encoding", [None, "gzip"])
def test_a_streamed_answer_reads_the_same_with_or_without_a_content_encoding(settings, encoding):
    """An answer sent plainly is read raw (one generator fewer per token); one sent gzipped
    (an upstream or a proxy may) is decoded: the same lines either way, through the real SDK
    over loopback HTTP."""
    import gzip

    from aiohttp import web

    async def completions(request):
        body = gzip.compress(STREAM) if encoding else STREAM
        headers = {"Content-Type": "text/event-stream"}
        if encoding:
            headers["Content-Encoding"] = encoding
        return web.Response(body=body, headers=headers)

    async def main():
        app = web.Application()
        app.router.add_post("/v1/chat/completions", completions)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        settings.AI_BASE_URL = f"http://127.0.0.1:{port}/v1"
        try:
            response = await provider.stream({"model": "m", "messages": [], "stream": True})
            try:
                return [line async for line in provider.lines(response)]
            finally:
                await response.close()
                await provider.close()
        finally:
            await runner.cleanup()

    assert asyncio.run(main()) == STREAM.splitlines()
