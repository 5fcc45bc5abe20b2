"""The prediction service (``lstm-stateful serve``): every stream's state kept across requests
and restarts, concurrent streams batched through the compiled step, each request applied
exactly once.

    store.py     the SQLite state file (WAL, full syncs), one row per stream; one writer per file
    engine.py    batched steps: streams' states stacked into one compiled call, padded to size classes
    streams.py   the exactly-once rules, and a round of requests decided, computed and committed
    body.py      a predict request's body, checked before anything is queued
    batcher.py   concurrent requests gathered into rounds (asyncio), one round at a time
    openapi.py   the routes' schemas, for the OpenAPI page
    app.py       the FastAPI app (imports FastAPI: the serve extra)

``lstm_stateful.commands.serve`` loads the model, opens the store and runs the app on uvicorn.
"""
