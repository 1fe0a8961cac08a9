"""Peers: what a Python user would otherwise build, serving the same contract subset.

:mod:`bench.peers.fastapi_peer` is FastAPI + sse-starlette on uvicorn, with one
asyncio task per job and one ``asyncio.Queue`` per subscriber.
"""
