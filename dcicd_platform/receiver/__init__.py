"""The webhook receiver (`dcicd serve`): proves each delivery genuine, makes it durable, says yes.

signatures.py checks the providers' signatures and tokens, landing_writer.py appends envelope
lines to the landing folder with one fsync per batch of concurrent requests (group commit),
app.py is the Starlette application, server.py runs it under uvicorn.
"""
