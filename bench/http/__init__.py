"""HTTP scenarios: a server under test in its own process, load from another.

:mod:`bench.http.wire` is a minimal HTTP/1.1 + SSE client on raw trio
sockets (cheap enough for thousands of streams in one process),
:mod:`bench.http.loadgen` the load process, :mod:`bench.http.server` starts
and samples the server under test, and :mod:`bench.http.scenarios` drives it all.
"""
