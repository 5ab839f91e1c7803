"""Shared pytest set-up: hypothesis profiles and hermetic environment.

Run: python -m pytest -q          (HYPOTHESIS_PROFILE=ci makes property tests derandomized)
"""
import os

from hypothesis import HealthCheck, settings

# The Hugging Face hub is unreachable here: make `datasets` fail fast instead of waiting.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# The train CLI caches encoded corpora under $TEXTPIPE_CACHE/corpora: keep them out of ~/.cache.
if "TEXTPIPE_CACHE" not in os.environ:
    import atexit
    import shutil
    import tempfile

    os.environ["TEXTPIPE_CACHE"] = tempfile.mkdtemp(prefix="textpipe-test-cache-")
    atexit.register(shutil.rmtree, os.environ["TEXTPIPE_CACHE"], True)

settings.register_profile(
    "ci", max_examples=100, deadline=None, derandomize=True, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile("thorough", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
