"""Web processes and detection workers score without torch: the learned model runs on ONNX Runtime.

Each check runs in a fresh interpreter, so what this test session has imported (torch, for the training
tests) does not count. torch is installed here (the training tools need it), so it could be loaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CREATE_KEY = (  # as tests/conftest.py's platform_key fixture does
    "from moderation.services.api_keys import api_key_create; print(api_key_create(kind='platform', name='probe')[1])"
)

# A gunicorn worker's life: import the WSGI application, then serve POST /api/v1/scan through it, scored
# in the request (detection=inline) as well as hashed and matched.
WEB_PROCESS = r"""
import io, json, sys, uuid
from importlib.util import find_spec

from moderation.wsgi import application

from tests.detection.images import encode, scene

boundary = uuid.uuid4().hex
body = (
    f'--{boundary}\r\nContent-Disposition: form-data; name="detection"\r\n\r\ninline\r\n'
    f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="up.jpg"\r\n'
    'Content-Type: application/octet-stream\r\n\r\n'
).encode() + encode(scene(5, (640, 480)), "JPEG", quality=90) + f'\r\n--{boundary}--\r\n'.encode()
environ = {
    "REQUEST_METHOD": "POST", "PATH_INFO": "/api/v1/scan", "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "http",
    "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr, "wsgi.version": (1, 0), "wsgi.multithread": False,
    "wsgi.multiprocess": True, "wsgi.run_once": False, "CONTENT_LENGTH": str(len(body)),
    "CONTENT_TYPE": f"multipart/form-data; boundary={boundary}", "HTTP_AUTHORIZATION": f"Api-Key {sys.argv[1]}",
}
status = []
answer = b"".join(application(environ, lambda line, headers, exc_info=None: status.append(line)))
print(json.dumps({"status": status[0], "body": json.loads(answer), "torch_installed": find_spec("torch") is not None,
                  "torch": "torch" in sys.modules, "onnxruntime": "onnxruntime" in sys.modules}))
"""

# A Celery detection worker's life: the app with every task module (as `celery worker` loads them), its
# worker_init handler, then a score.
DETECTION_WORKER = r"""
import json, sys

import django

django.setup()
from moderation.celery import _limit_worker_memory, app

app.loader.import_default_modules()
_limit_worker_memory()
from detection.scoring import score_bytes

from tests.detection.images import encode, scene

result = score_bytes(encode(scene(6, (640, 480)), "JPEG", quality=90))
print(json.dumps({"signals": [signal.as_dict() for signal in result.signals], "torch": "torch" in sys.modules,
                  "onnxruntime": "onnxruntime" in sys.modules}))
"""


def fresh_python(code: str, env: dict[str, str], *args: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def environment(tmp_path: Path) -> dict[str, str]:
    inherited = {name: value for name, value in os.environ.items() if not name.startswith(("DJANGO_", "DATABASE_"))}
    return {
        **{name: value for name, value in inherited.items() if not name.startswith("TAKEDOWN_")},
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'takedown.sqlite3'}",
        "TAKEDOWN_MEDIA_ROOT": str(tmp_path / "media"),
        "TAKEDOWN_TASK_MEMORY_MB": "0",
    }


def model_signal(signals: object) -> dict[str, object]:
    assert isinstance(signals, list)
    (model,) = [signal for signal in signals if signal["name"] == "model"]
    return dict(model)


def test_a_web_process_serves_a_scored_scan_without_ever_loading_torch(tmp_path: Path) -> None:
    env = environment(tmp_path)
    migrated = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300, check=False)
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    made = subprocess.run([sys.executable, "manage.py", "shell", "-c", CREATE_KEY], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert made.returncode == 0, made.stderr[-3000:]

    served = fresh_python(WEB_PROCESS, env, made.stdout.strip().splitlines()[-1])

    assert served["status"] == "200 OK", served
    body = served["body"]
    assert isinstance(body, dict) and body["detection"]["status"] == "scored" and body["score"] is not None
    model = model_signal(body["signals"])
    assert model["detail"]["version"] and model["detail"]["patches"]  # the learned model ran, in this process
    assert served["torch_installed"] and served["onnxruntime"]
    assert served["torch"] is False


def test_a_detection_worker_scores_without_ever_loading_torch(tmp_path: Path) -> None:
    scored = fresh_python(DETECTION_WORKER, environment(tmp_path))

    model = model_signal(scored["signals"])
    assert model["detail"]["version"] and model["detail"]["patches"]
    assert scored["onnxruntime"]
    assert scored["torch"] is False
