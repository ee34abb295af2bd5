"""Ready-made middleware that makes a service honour trustproof's contract (see `contract`):
`trustproof.middleware.asgi` for FastAPI/Starlette, `trustproof.middleware.wsgi` for Flask and
any WSGI app. Standard library only: importing it costs a service milliseconds."""
