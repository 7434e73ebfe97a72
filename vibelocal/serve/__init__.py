"""`vibelocal serve`: an OpenAI-compatible HTTP server over the session's engine (Starlette + uvicorn).

`app` builds the ASGI app, `routes` answers the endpoints, `requests` maps a JSON body to a turn, `budgets`
maps every client's reasoning-budget field to the one turn-wide budget, `shapes` writes OpenAI-shaped
objects, `sse` frames the stream, `turns` runs one turn at a time from a bounded FIFO queue, `auth` and
`access` check the bearer key and log one line per request.
"""
