"""The download baseline: a directory served by Starlette's ``StaticFiles`` (uvicorn factory).

The API has no static route, so the bench serves the very PDF the API downloads from this
separate app under the same server (uvicorn, same worker count, uvloop, httptools). Both answer
with Starlette's ``FileResponse``; the difference is the API's own work per download
(authentication, the snapshot query, the audit row, headers).
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles


async def healthz(_request: object) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def create_app() -> Starlette:
    directory = os.environ["BENCH_STATIC_DIR"]
    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Mount("/static", app=StaticFiles(directory=directory)),
        ]
    )
