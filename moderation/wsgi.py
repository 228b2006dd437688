import os

# A web process serves one request at a time per worker: intra-op threads in numpy's BLAS and torch only
# spin on the other cores. One thread each halved the CPU a scan costs in the load benchmark
# (docs/benchmarks.md, "Load"). Set before numpy or torch is imported; the environment still wins.
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

from django.core.wsgi import get_wsgi_application  # noqa: E402 - after the thread settings above

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "moderation.settings")
application = get_wsgi_application()
