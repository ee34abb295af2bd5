"""The live view's calls to a mocked dependency (`SandboxView.dependency_call`): through the
calling service's egress proxy for it, or straight to the mock without credentials. One fresh
connection per call, loopback only; a transport failure is an answer with no status."""

from __future__ import annotations

import aiohttp

from trustproof.sandbox.dependencies import Dependencies
from trustproof.scrub import scrub
from trustproof.spec.mock_table import MOCK_HEADER
from trustproof.view.dependency import DependencyAnswer, DependencyCall

TIMEOUT_S = 10.0
PROXY_DECISION = "egress-error"  # X-Trustproof-Decision of the proxy's own answers


async def call_dependency(dependencies: Dependencies, call: DependencyCall) -> DependencyAnswer:
    if call.through_proxy:
        proxy = dependencies.proxies.get((call.service, call.dependency))
        if proxy is None:
            return DependencyAnswer(None, detail=f"{call.service} has no proxy for it")
        base = proxy.url
    else:
        mock = dependencies.mocks.get(call.dependency)
        if mock is None:
            return DependencyAnswer(None, detail=f"{call.dependency} is not mocked")
        base = mock.url
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.request(call.method, base + call.path, allow_redirects=False) as response,
        ):
            body = await response.content.read(400)
            return DependencyAnswer(
                response.status,
                response.headers.get(MOCK_HEADER, ""),
                scrub(body.decode("utf-8", "replace"))[:200],
                from_proxy=response.headers.get("X-Trustproof-Decision") == PROXY_DECISION,
            )
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        return DependencyAnswer(None, detail=f"{type(exc).__name__}: {scrub(str(exc))[:160]}")
