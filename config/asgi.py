import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

django_application = get_asgi_application()  # sets Django up: import config.lean after

import gc  # noqa: E402

from config.lean import LeanApiHandler, is_keyed_feature_call  # noqa: E402
from config.lifespan import lifespan  # noqa: E402

# Garbage collection: everything loaded at start-up (Django, the SDKs, the URL
# and model registries) lives as long as the process, so it is moved out of the
# collector's sight, and the youngest generation is collected less often. Full
# collections over that heap were the web process's p99 spikes (tens of ms).
gc.collect()
gc.freeze()
gc.set_threshold(10_000, 20, 20)

# API-key calls to the feature endpoints skip the browser middleware (see config/lean.py).
lean_application = LeanApiHandler()


async def application(scope, receive, send):
    if scope["type"] == "lifespan":  # start-up journal replay, graceful drain
        return await lifespan(receive, send)
    if is_keyed_feature_call(scope):
        return await lean_application(scope, receive, send)
    return await django_application(scope, receive, send)
